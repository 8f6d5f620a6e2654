// The Node.js peer of `make bench-coldstart`: the same work as get-user-set-info's cold start and
// first request — read the chat key from Secrets Manager at init, then per request verify the
// HS256 token, GET the current token from Redis and GetItem the caller's row together, then
// GetItem the asked user's row — on the Lambda Runtime API loop a Node.js custom runtime runs.
import { createHmac, timingSafeEqual } from "node:crypto";
import { DynamoDBClient, GetItemCommand } from "@aws-sdk/client-dynamodb";
import { SecretsManagerClient, GetSecretValueCommand } from "@aws-sdk/client-secrets-manager";
import { createClient } from "redis";

const api = `http://${process.env.AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime`;
const secrets = new SecretsManagerClient({});
const dynamodb = new DynamoDBClient({});
const redis = createClient({ url: process.env.REDIS_URL });
const [secret] = await Promise.all([
  secrets.send(new GetSecretValueCommand({ SecretId: process.env.JWT_SECRET_ARN })),
  redis.connect(),
]);
const key = Buffer.from(secret.SecretString);

function verify(token) {
  const [header, payload, signature] = (token || "").split(".");
  const expected = createHmac("sha256", key).update(`${header}.${payload}`).digest();
  const given = Buffer.from(signature || "", "base64url");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
  return claims.exp > Date.now() / 1000 ? claims : null;
}

async function handle(event) {
  const token = event.headers?.token;
  const claims = verify(token);
  const reply = (status, data) => ({
    statusCode: status,
    headers: { "content-type": "application/json", "access-control-allow-origin": "*" },
    body: JSON.stringify({ msg: status === 200 ? "ok" : "fail", data }),
  });
  if (!claims) return reply(400, "Token 令牌不合法！");
  const userRow = (id) =>
    dynamodb.send(new GetItemCommand({
      TableName: process.env.USERS_TABLE,
      Key: { pk: { S: `USER#${id}` } },
      ConsistentRead: true,
    }));
  // As the Rust function: the current token and the caller's row at once, then the asked user's row.
  const [current, caller] = await Promise.all([redis.get(`chat_user_${claims.id}`), userRow(claims.id)]);
  if (current !== token || !caller.Item) return reply(400, "Token 令牌不合法！");
  const target = await userRow(JSON.parse(event.body || "{}").userid);
  if (!target.Item) return reply(400, "用户不存在");
  return reply(200, { userset: target.Item.userset?.S ?? "" });
}

for (;;) {
  const next = await fetch(`${api}/invocation/next`);
  const id = next.headers.get("lambda-runtime-aws-request-id");
  const result = await handle(await next.json());
  await fetch(`${api}/invocation/${id}/response`, { method: "POST", body: JSON.stringify(result) });
}

// End-to-end test of the admin console (GET /admin) in headless Chromium against a running backend.
//
//   BASE_URL=http://127.0.0.1:3000 ADMIN_USERNAME=admin ADMIN_PASSWORD=... SCREENSHOT=/tmp/admin.png \
//     node tests/browser/admin-console.mjs
//
// Env: BASE_URL (default http://127.0.0.1:3000), ADMIN_USERNAME, ADMIN_PASSWORD (required),
// SCREENSHOT (PNG of the user list, default $TMPDIR/admin-console.png), CHROMIUM (default /usr/bin/chromium).
// Exits 0 when every step passed, 1 with the first failed assertion otherwise.
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE_URL = (process.env.BASE_URL || 'http://127.0.0.1:3000').replace(/\/+$/, '');
const ADMIN_USERNAME = process.env.ADMIN_USERNAME;
const ADMIN_PASSWORD = process.env.ADMIN_PASSWORD;
const SCREENSHOT = process.env.SCREENSHOT || join(tmpdir(), 'admin-console.png');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TIMEOUT = 15_000;
const OVERALL_TIMEOUT = 180_000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Retries a block of assertions until it passes; after `timeout` the last failure is thrown.
async function eventually(fn, timeout = TIMEOUT) {
  const end = Date.now() + timeout;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > end) throw e;
      await sleep(150);
    }
  }
}

async function call(method, path, { token, bearer, body } = {}) {
  const headers = {};
  if (token) headers.token = token;
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(BASE_URL + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(TIMEOUT),
  });
  const raw = await res.text();
  let json;
  try {
    json = JSON.parse(raw);
  } catch {
    assert.fail(`${method} ${path}: answer is not JSON (HTTP ${res.status}): ${raw.slice(0, 200)}`);
  }
  return { status: res.status, json };
}

const offline = (token) => call('POST', '/api/chat/chatGetmessageOffLine', { token, body: {} });

async function expectOfflineOk(token, what) {
  const r = await offline(token);
  assert.equal(r.status, 200, `${what}: chatGetmessageOffLine status (body ${JSON.stringify(r.json)})`);
  assert.equal(r.json.msg, 'ok', `${what}: chatGetmessageOffLine msg`);
}

async function expectOfflineFail(token, message, what) {
  const r = await offline(token);
  assert.equal(r.status, 400, `${what}: chatGetmessageOffLine status (body ${JSON.stringify(r.json)})`);
  assert.deepEqual(r.json, { msg: 'fail', data: message }, `${what}: chatGetmessageOffLine body`);
}

async function main() {
  assert.ok(ADMIN_USERNAME, 'ADMIN_USERNAME is not set');
  assert.ok(ADMIN_PASSWORD, 'ADMIN_PASSWORD is not set');

  const dialogs = []; // native dialogs (alert/confirm/prompt) must never open
  const pageErrors = [];
  const cspErrors = [];
  const created = new Map(); // username -> id, for best-effort cleanup after a failure
  let adminToken = null;

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'zh-CN' });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.setDefaultNavigationTimeout(TIMEOUT);
  page.on('dialog', (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspErrors.push(m.text());
  });

  const health = () => {
    assert.deepEqual(dialogs, [], 'a native dialog was opened');
    assert.deepEqual(cspErrors, [], 'the page violated its Content-Security-Policy');
    assert.deepEqual(pageErrors, [], 'uncaught error in the page');
  };
  const step = async (name, fn) => {
    await fn();
    health();
    console.log(`ok - ${name}`);
  };

  // DOM reads that never wait (so `eventually` controls the timing).
  const ui = () => page.evaluate(() => {
    const $ = (id) => document.getElementById(id);
    return {
      loginVisible: !!$('login-form').offsetParent,
      mainVisible: !!$('main-view').offsetParent,
      loginMsg: $('login-msg').textContent,
      msg: $('msg').textContent,
      adminName: $('admin-name').textContent,
      userDialogOpen: $('user-dialog').open,
      userFormMsg: $('user-form-msg').textContent,
      confirmOpen: $('confirm-dialog').open,
      confirmText: $('confirm-text').textContent,
      loading: $('users-table').getAttribute('data-loading'),
    };
  });
  const rows = (username) => page.evaluate((u) => [...document.querySelectorAll('#users-tbody tr[data-testid="user-row"]')]
    .filter((tr) => tr.dataset.username === u)
    .map((tr) => ({
      id: tr.dataset.id,
      status: tr.dataset.status,
      toggleLabel: tr.querySelector('[data-testid="toggle-btn"]').textContent,
      cells: Object.fromEntries([...tr.cells].map((td) => [td.dataset.col,
        { text: td.textContent, elements: td.querySelectorAll('*').length }])),
    })), username);
  const oneRow = async (username) => {
    const r = await rows(username);
    assert.equal(r.length, 1, `exactly one row for ${JSON.stringify(username)} in the list`);
    return r[0];
  };
  const rowButton = (id, testid) => page.locator(`#users-tbody tr[data-testid="user-row"][data-id="${id}"] [data-testid="${testid}"]`);

  // Runs `action` and waits until the user list it triggers has been fetched and rendered.
  const listReload = async (action) => {
    const listed = page.waitForResponse((r) => new URL(r.url()).pathname === '/admin/chatuser' && r.request().method() === 'GET');
    await action();
    const res = await listed;
    assert.equal(res.status(), 200, `GET /admin/chatuser status`);
    await page.waitForSelector('#users-table[data-loading="false"]', { state: 'attached' });
  };
  const search = (keyword) => listReload(async () => {
    await page.fill('#search-input', keyword);
    await page.click('#search-btn');
  });

  const createUser = async (username, password) => {
    await page.click('#create-btn');
    await page.locator('#user-dialog').waitFor({ state: 'visible' });
    await page.fill('#user-username', username);
    await page.fill('#user-password', password);
    await page.fill('#user-avatar', '');
    await page.click('#user-save');
    await eventually(async () => {
      const s = await ui();
      assert.equal(s.userDialogOpen, false, `create dialog still open; form message: ${JSON.stringify(s.userFormMsg)}`);
      assert.equal(s.msg, '创建成功', 'message after creating a user');
    });
    await search(username);
    const row = await oneRow(username);
    created.set(username, row.id);
    return row;
  };

  const deleteUser = async (username, { cancelFirst }) => {
    await search(username);
    const { id } = await oneRow(username);
    if (cancelFirst) {
      await rowButton(id, 'delete-btn').click();
      await page.locator('#confirm-dialog').waitFor({ state: 'visible' });
      assert.ok((await ui()).confirmText.includes(username), 'the confirmation names the user');
      await page.click('#confirm-cancel');
      await page.locator('#confirm-dialog').waitFor({ state: 'hidden' });
      await sleep(500);
      await oneRow(username); // still listed after cancel
    }
    await rowButton(id, 'delete-btn').click();
    await page.locator('#confirm-dialog').waitFor({ state: 'visible' });
    await page.click('#confirm-ok');
    await eventually(async () => {
      const s = await ui();
      assert.equal(s.confirmOpen, false, 'confirmation dialog closed');
      assert.equal(s.msg, '删除成功', 'message after deleting');
      assert.equal(s.loading, 'false');
      assert.equal((await rows(username)).length, 0, `${JSON.stringify(username)} gone from the list`);
    });
    created.delete(username);
  };

  const user1 = `e2e${randomBytes(4).toString('hex')}`;
  const pass1 = `pw${randomBytes(5).toString('hex')}`;
  const htmlUser = `<b>e2e</b>${String(randomInt(1000)).padStart(3, '0')}`;
  const htmlPass = `pw${randomBytes(5).toString('hex')}`;
  const nickPayload = '<img src=x onerror=__x=1>';
  let chatToken;

  try {
    await step('a. open /admin; wrong password shows 密码错误; log in', async () => {
      const res = await page.goto(`${BASE_URL}/admin`);
      assert.equal(res.status(), 200, 'GET /admin status');
      assert.match(res.headers()['content-type'] || '', /^text\/html/, 'GET /admin content-type');
      const csp = res.headers()['content-security-policy'] || '';
      assert.match(csp, /default-src 'none'/, 'GET /admin sends a strict Content-Security-Policy');
      assert.match(csp, /script-src 'sha256-/, 'CSP allows the script by hash only');
      await eventually(async () => {
        health();
        assert.equal((await ui()).loginVisible, true, 'login form shown');
      });
      await page.fill('#login-username', ADMIN_USERNAME);
      await page.fill('#login-password', `${ADMIN_PASSWORD}-wrong`);
      await page.click('#login-submit');
      await eventually(async () => assert.equal((await ui()).loginMsg, '密码错误', 'login message after a wrong password'));
      await page.fill('#login-password', ADMIN_PASSWORD);
      await listReload(() => page.click('#login-submit'));
      const s = await ui();
      assert.equal(s.mainVisible, true, 'user list shown after login');
      assert.equal(s.loginVisible, false, 'login form hidden after login');
      assert.equal(s.adminName.toLowerCase(), ADMIN_USERNAME.toLowerCase(), 'admin name in the header');
      adminToken = await page.evaluate(() => sessionStorage.getItem('chatAdminToken'));
      assert.ok(adminToken, 'admin token kept in sessionStorage.chatAdminToken');
    });

    await step(`b. create chat user ${user1} in the console and find it with the search box`, async () => {
      const row = await createUser(user1, pass1);
      assert.equal(row.status, '1', 'new user is enabled');
      assert.equal(row.cells.username.text, user1);
      assert.equal(row.cells.status.text, '启用');
      assert.equal(row.cells.role.text, '注册用户');
      assert.match(row.cells.id.text, /^\d+$/);
    });

    await step('c. the new user logs in through /api/loginChat; chatGetmessageOffLine answers ok', async () => {
      const r = await call('POST', '/api/loginChat', { body: { username: user1, password: pass1 } });
      assert.equal(r.status, 200, `loginChat status (body ${JSON.stringify(r.json)})`);
      assert.equal(r.json.msg, 'ok');
      assert.equal(r.json.data.username, user1);
      chatToken = r.json.data.token;
      assert.equal(typeof chatToken, 'string', 'loginChat data.token');
      await expectOfflineOk(chatToken, 'enabled user');
    });

    await step('d. disable in the console → chat API refuses; enable → accepted again', async () => {
      const { id } = await oneRow(user1);
      await rowButton(id, 'toggle-btn').click();
      await eventually(async () => {
        const row = await oneRow(user1);
        assert.equal(row.status, '0', 'row marked disabled');
        assert.equal(row.cells.status.text, '禁用', 'status cell after disabling');
        assert.equal(row.toggleLabel, '启用', 'toggle button offers enabling');
      });
      await expectOfflineFail(chatToken, '当前用户不存在或者已被禁用', 'disabled user');
      await rowButton(id, 'toggle-btn').click();
      await eventually(async () => {
        const row = await oneRow(user1);
        assert.equal(row.status, '1', 'row marked enabled');
        assert.equal(row.cells.status.text, '启用', 'status cell after enabling');
        assert.equal(row.toggleLabel, '禁用', 'toggle button offers disabling');
      });
      await expectOfflineOk(chatToken, 're-enabled user');
    });

    await step('e. HTML in nickname and username is shown as text, never run', async () => {
      assert.ok(nickPayload.length <= 30);
      const r = await call('POST', '/api/chat/updateUserinfo', {
        token: chatToken, body: { fieldname: 'nickname', fieldValue: nickPayload },
      });
      assert.equal(r.status, 200, `updateUserinfo status (body ${JSON.stringify(r.json)})`);
      assert.deepEqual(r.json, { msg: 'ok', data: '修改昵称成功' });
      await createUser(htmlUser, htmlPass);
      await listReload(() => page.reload());
      assert.equal((await ui()).mainVisible, true, 'still logged in after a reload (sessionStorage)');
      await search(user1);
      const row1 = await oneRow(user1);
      assert.equal(row1.cells.nickname.text, nickPayload, 'nickname cell shows the literal payload');
      assert.equal(row1.cells.nickname.elements, 0, 'nickname cell holds no element');
      await search(htmlUser);
      const row2 = await oneRow(htmlUser);
      assert.equal(row2.cells.username.text, htmlUser, 'username cell shows the literal HTML');
      assert.equal(row2.cells.username.elements, 0, 'username cell holds no element');
      await search('e2e');
      await oneRow(user1);
      await oneRow(htmlUser);
      const injected = await page.evaluate(() => ({
        b: document.querySelectorAll('#users-table b').length,
        img: document.querySelectorAll('#users-table img:not([data-testid="avatar"])').length,
        imgX: document.querySelectorAll('img[src="x"]').length,
        x: typeof window.__x,
      }));
      assert.deepEqual(injected, { b: 0, img: 0, imgX: 0, x: 'undefined' }, 'no injected element or script effect');
    });

    await step(`f. screenshot of the user list → ${SCREENSHOT}`, async () => {
      const s = await ui();
      assert.equal(s.mainVisible, true);
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
    });

    await step('g. delete through the confirmation (cancel keeps, confirm removes); old chat token dies', async () => {
      await deleteUser(user1, { cancelFirst: true });
      await expectOfflineFail(chatToken, 'Token 令牌不合法！', 'deleted user');
      await deleteUser(htmlUser, { cancelFirst: false });
    });

    await step('h. log out in the console → login form; the old admin token is refused', async () => {
      const token = await page.evaluate(() => sessionStorage.getItem('chatAdminToken'));
      assert.ok(token, 'admin token in sessionStorage before logout');
      await page.click('#logout-btn');
      await eventually(async () => {
        const s = await ui();
        assert.equal(s.loginVisible, true, 'login form shown after logout');
        assert.equal(s.mainVisible, false, 'user list hidden after logout');
      });
      assert.equal(await page.evaluate(() => sessionStorage.getItem('chatAdminToken')), null, 'token removed from sessionStorage');
      const r = await call('GET', '/admin/chatuser', { bearer: token });
      assert.equal(r.status, 401, `old admin token status (body ${JSON.stringify(r.json)})`);
      assert.deepEqual(r.json, { msg: 'fail', data: '请先登录！' });
      adminToken = null;
    });
  } catch (e) {
    const failShot = SCREENSHOT.replace(/(\.png)?$/i, '-failure.png');
    await page.screenshot({ path: failShot, fullPage: true }).then(
      () => console.error(`(page at the failure: ${failShot})`), () => {});
    if (adminToken) {
      for (const [username, id] of created) {
        await call('POST', `/admin/chatuser/delete/${id}`, { bearer: adminToken, body: {} }).then(
          () => console.error(`(cleanup: deleted ${JSON.stringify(username)} id ${id})`), () => {});
      }
    }
    throw e;
  } finally {
    await browser.close().catch(() => {});
  }
}

setTimeout(() => {
  console.error(`FAIL: the whole test took longer than ${OVERALL_TIMEOUT / 1000} s`);
  process.exit(1);
}, OVERALL_TIMEOUT).unref();

main().then(
  () => {
    console.log('admin console e2e: all steps passed');
    process.exit(0);
  },
  (e) => {
    console.error(`FAIL: ${e && e.message ? e.message : e}`);
    if (e instanceof assert.AssertionError && !e.generatedMessage && !/actual/.test(e.message)) {
      console.error(`  actual:   ${JSON.stringify(e.actual)}\n  expected: ${JSON.stringify(e.expected)}`);
    }
    process.exit(1);
  },
);

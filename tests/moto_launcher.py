"""Runs moto's DynamoDB-compatible server on a free loopback port for the Rust test harness.

Prints the port on stdout, then serves until its stdin closes (the test process exited or
dropped the handle), so no server outlives the tests even when they crash."""
import socket
import sys

from moto.server import ThreadedMotoServer

sock = socket.socket()
sock.bind(("127.0.0.1", 0))
port = sock.getsockname()[1]
sock.close()

server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
server.start()
print(port, flush=True)
sys.stdin.read()
server.stop()

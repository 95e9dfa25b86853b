// Fetch a URL with Node through HTTPS_PROXY (Node 18 has no proxy support of
// its own): CONNECT with the proxy's basic credentials, then TLS with Node's
// CA store plus NODE_EXTRA_CA_CERTS, and the client certificate corpnet names.
import fs from 'node:fs';
import http from 'node:http';
import tls from 'node:tls';

const target = new URL(process.argv[2]);
const proxy = new URL(process.env.HTTPS_PROXY || process.env.https_proxy);
const headers = {};
if (proxy.username) {
  const creds = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
  headers['Proxy-Authorization'] = `Basic ${Buffer.from(creds).toString('base64')}`;
}
const port = target.port || 443;
const fail = (message) => { console.log(message); process.exit(1); };
const req = http.request({
  host: proxy.hostname, port: proxy.port || 80, method: 'CONNECT',
  path: `${target.hostname}:${port}`, headers,
});
req.on('connect', (res, socket) => {
  if (res.statusCode !== 200) fail(`CONNECT answered ${res.statusCode}`);
  const options = { socket, servername: target.hostname };
  if (process.env.CLAUDE_CODE_CLIENT_CERT) {
    options.cert = fs.readFileSync(process.env.CLAUDE_CODE_CLIENT_CERT);
    options.key = fs.readFileSync(process.env.CLAUDE_CODE_CLIENT_KEY);
    options.passphrase = process.env.CLAUDE_CODE_CLIENT_KEY_PASSPHRASE;
  }
  let data = '';
  const conn = tls.connect(options, () => {
    conn.write(`GET ${target.pathname} HTTP/1.1\r\nHost: ${target.host}\r\nConnection: close\r\n\r\n`);
  });
  conn.on('data', (chunk) => { data += chunk; });
  conn.on('end', () => {
    const [head, body = ''] = data.split('\r\n\r\n');
    if (!head.startsWith('HTTP/1.1 200')) fail(head.split('\r\n')[0]);
    console.log(body.trim());
  });
  conn.on('error', (e) => fail(e.message));
});
req.on('error', (e) => fail(e.message));
req.end();

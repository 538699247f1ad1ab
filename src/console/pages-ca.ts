/**
 * The local CA of HTTPS interception: what it is (subject, fingerprint,
 * validity), where to get it (/ca.pem, `latchkey ca print`) and how each
 * client is told to trust it. The certificate is public; its key never leaves
 * the sealed store.
 */
import { X509Certificate } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { html, page, when } from './html.js';
import { sendPage, type ConsoleKit } from './server.js';
import { chrome } from './pages-integrations.js';

export function caPages(app: FastifyInstance, kit: ConsoleKit): void {
  app.get('/console/ca', async (req, reply) => {
    // Made on first need, like /ca.pem and the first intercepted tunnel.
    const cert = new X509Certificate(await kit.ctx.localCa.certificatePem());
    const body = html`<p class="hint">Programs that only know <code>HTTPS_PROXY</code> reach an integration through a CONNECT tunnel that latchkey opens and re-encrypts with a certificate for the target host, signed by this CA. A client trusts those certificates once it trusts this CA. The CA's private key stays sealed in the database; this certificate is public.</p>
<section class="card"><h2>Certificate</h2>
<dl class="facts">
<dt>Subject</dt><dd><code>${cert.subject}</code></dd>
<dt>SHA-256 fingerprint</dt><dd><code id="ca-fingerprint">${cert.fingerprint256}</code></dd>
<dt>Valid</dt><dd>${when(new Date(cert.validFrom).toISOString())} to ${when(new Date(cert.validTo).toISOString())}</dd>
</dl>
<p><a href="/ca.pem" download="latchkey-ca.pem">Download latchkey-ca.pem</a> (also <code>latchkey ca print</code>, or <code>GET /ca.pem</code> on this listener).</p>
</section>
<section class="card"><h2>Trusting it</h2>
<p class="hint"><code>latchkey run -- COMMAND</code> does all of this for one command (a temporary bundle of the system's roots and this CA, and the proxy variables). By hand, with <code>HTTPS_PROXY=http://auto:$KEY@{the proxy listener}</code>:</p>
<table><thead><tr><th scope="col">Client</th><th scope="col">How</th></tr></thead><tbody>
<tr><td>curl</td><td><code>curl --cacert latchkey-ca.pem https://…</code></td></tr>
<tr><td>Python requests</td><td><code>REQUESTS_CA_BUNDLE=latchkey-ca.pem</code></td></tr>
<tr><td>Python httpx, OpenSSL, Go</td><td><code>SSL_CERT_FILE=latchkey-ca.pem</code></td></tr>
<tr><td>Node.js</td><td><code>NODE_EXTRA_CA_CERTS=latchkey-ca.pem</code></td></tr>
<tr><td>git</td><td><code>GIT_SSL_CAINFO=latchkey-ca.pem</code></td></tr>
<tr><td>AWS SDKs and CLI</td><td><code>AWS_CA_BUNDLE=latchkey-ca.pem</code></td></tr>
</tbody></table>
<p class="hint">A bundle given to <code>SSL_CERT_FILE</code> or <code>REQUESTS_CA_BUNDLE</code> replaces the client's default roots: append this CA to the system bundle to keep reaching other hosts. After <code>latchkey ca rotate</code>, hand out the new certificate; running latchkeys switch at their next tunnel.</p>
</section>`;
    return sendPage(reply, page(chrome(req, kit, 'Local CA', 'ca'), body));
  });
}

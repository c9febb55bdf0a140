'use strict';
// msal-node used directly (not through botframework-connector), configured as the README says:
// the sandbox's authority plus `knownAuthorities`, which keeps msal-node from asking
// login.microsoftonline.com about it. Prints the access token on stdout, nothing else.
//
// Usage: node --require ./loopback-guard.js msal_node_client.js secret|cert
//
// loopback-guard.js is preloaded only as a safety net: it logs any redirect of Microsoft's
// instance discovery to stderr, and this client fails if one happened, so the flow proves that
// `knownAuthorities` alone is enough.
const fs = require('fs');
const msal = require('@azure/msal-node');

let redirected = false;
const write = process.stderr.write.bind(process.stderr);
process.stderr.write = (chunk, ...rest) => {
    if (String(chunk).startsWith('[loopback-guard] https://login')) redirected = true;
    return write(chunk, ...rest);
};

async function main() {
    const mode = process.argv[2] || 'secret';
    const env = process.env;
    const host = env.BOTAUTH_AUTHORITY_HOST.replace(/\/+$/, '');
    const auth = {
        clientId: env.CLIENT_ID,
        authority: `${host}/${env.TENANT_ID}`,
        knownAuthorities: [new URL(host).host],
    };
    if (mode === 'secret') {
        auth.clientSecret = env.CLIENT_SECRET;
    } else if (mode === 'cert') {
        auth.clientCertificate = {
            thumbprint: env.INTEROP_CERT_SHA1,
            privateKey: fs.readFileSync(env.INTEROP_CERT_KEY, 'utf8'),
        };
    } else {
        throw new Error(`unknown mode ${mode}`);
    }
    const app = new msal.ConfidentialClientApplication({ auth });
    const result = await app.acquireTokenByClientCredential({
        scopes: ['https://api.botframework.com/.default'],
    });
    if (redirected) throw new Error('msal-node asked login.microsoftonline.com despite knownAuthorities');
    process.stdout.write(`${result.accessToken}\n`);
}

main().catch((err) => {
    const code = err && err.errorCode ? ` (${err.errorCode})` : '';
    process.stderr.write(`msal-node: ${err && err.message ? err.message : err}${code}\n`);
    process.exit(1);
});

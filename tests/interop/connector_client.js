'use strict';
// botframework-connector's own credential classes against the sandbox: prints the access token
// on stdout, nothing else.
//
// Usage: node --require ./loopback-guard.js connector_client.js secret|cert|cert-x5c
//
// Reads the sandbox's exported environment (BOTAUTH_AUTHORITY_HOST, TENANT_ID, CLIENT_ID,
// CLIENT_SECRET; NODE_EXTRA_CA_CERTS must be set before node starts) and INTEROP_CERT_KEY /
// INTEROP_CERT_PEM / INTEROP_CERT_SHA1 for the certificate modes.
const fs = require('fs');
const { MicrosoftAppCredentials, CertificateAppCredentials } = require('botframework-connector');

async function main() {
    const mode = process.argv[2] || 'secret';
    const env = process.env;
    const authority = `${env.BOTAUTH_AUTHORITY_HOST.replace(/\/+$/, '')}/${env.TENANT_ID}`;
    let credentials;
    if (mode === 'secret') {
        credentials = new MicrosoftAppCredentials(env.CLIENT_ID, env.CLIENT_SECRET, env.TENANT_ID);
    } else if (mode === 'cert' || mode === 'cert-x5c') {
        credentials = new CertificateAppCredentials(
            env.CLIENT_ID,
            env.INTEROP_CERT_SHA1,
            fs.readFileSync(env.INTEROP_CERT_KEY, 'utf8'),
            env.TENANT_ID,
            undefined,
            mode === 'cert-x5c' ? fs.readFileSync(env.INTEROP_CERT_PEM, 'utf8') : undefined,
        );
    } else {
        throw new Error(`unknown mode ${mode}`);
    }
    // The documented knob for a non-public cloud: the login endpoint (authority) the MSAL
    // ConfidentialClientApplication is built with on the first getToken().
    credentials.oAuthEndpoint = authority;
    const token = await credentials.getToken(true);
    process.stdout.write(`${token}\n`);
}

main().catch((err) => {
    const code = err && err.errorCode ? ` (${err.errorCode})` : '';
    process.stderr.write(`${err && err.name}${code}: ${err && err.message}\n`);
    process.exit(1);
});

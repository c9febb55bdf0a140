'use strict';
// Microsoft's own user-token client (botframework-connector's UserTokenClientImpl, the one the
// CloudAdapter builds) against the sandbox's Token Service: every operation, and the answers the
// real client expects. Prints one line per check on stdout; exits 1 at the first mismatch.
//
// Usage: node --require ./loopback-guard.js user_token.js CONNECTION
//
// Reads the sandbox's exported environment (BOTAUTH_TOKEN_SERVICE_URL, BOTAUTH_AUTHORITY_HOST,
// BOTAUTH_ALLOWED_SERVICE_URLS, CLIENT_ID, CLIENT_SECRET, TENANT_ID; NODE_EXTRA_CA_CERTS must be
// set before node starts). Never prints a token, a code or a link.
const https = require('https');
const http = require('http');
const { MicrosoftAppCredentials } = require('botframework-connector');
const { UserTokenClientImpl } = require('botframework-connector/lib/auth/userTokenClientImpl');

function check(ok, what) {
    if (!ok) {
        throw new Error(`check failed: ${what}`);
    }
    process.stdout.write(`ok ${what}\n`);
}

function fetchPage(link) {
    const get = link.startsWith('https:') ? https.get : http.get;
    return new Promise((resolve, reject) => {
        get(link, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (chunk) => (body += chunk));
            res.on('end', () => resolve({ status: res.statusCode, body }));
        }).on('error', reject);
    });
}

async function main() {
    const connection = process.argv[2] || 'graph';
    const env = process.env;
    const credentials = new MicrosoftAppCredentials(env.CLIENT_ID, env.CLIENT_SECRET, env.TENANT_ID);
    credentials.oAuthEndpoint = `${env.BOTAUTH_AUTHORITY_HOST.replace(/\/+$/, '')}/${env.TENANT_ID}`;
    const client = new UserTokenClientImpl(env.CLIENT_ID, credentials, env.BOTAUTH_TOKEN_SERVICE_URL);
    const user = `29:interop-user-${Date.now()}`;
    const channel = 'msteams';
    const activity = {
        type: 'message',
        id: 'interop-1',
        channelId: channel,
        serviceUrl: (env.BOTAUTH_ALLOWED_SERVICE_URLS || '').split(/[ ,]/)[0],
        from: { id: user, name: 'Interop User' },
        recipient: { id: `28:${env.CLIENT_ID}`, name: 'Interop Bot' },
        conversation: { id: 'a:interop-conversation' },
        locale: 'en-US',
    };

    const none = await client.getUserToken(user, connection, channel);
    check(!none || !none.token, 'getUserToken before sign-in: 404, no token');

    const resource = await client.getSignInResource(connection, activity);
    check(resource && typeof resource.signInLink === 'string', 'getSignInResource: signInLink (the SDK\'s state accepted)');
    check(
        resource.tokenExchangeResource && resource.tokenExchangeResource.uri === `api://botid-${env.CLIENT_ID}`,
        'getSignInResource: tokenExchangeResource.uri is api://botid-{appId}',
    );
    check(resource.tokenPostResource && typeof resource.tokenPostResource.sasUrl === 'string', 'getSignInResource: tokenPostResource.sasUrl');

    const page = await fetchPage(resource.signInLink);
    const match = /id="magic-code">(\d{6})</.exec(page.body);
    check(page.status === 200 && match, 'the sign-in page shows a 6-digit magic code');
    const code = match[1];

    const refused = await client.getUserToken(user, connection, channel, code === '000000' ? '000001' : '000000');
    check(!refused || !refused.token, 'getUserToken with a wrong code: 404, no token');
    const token = await client.getUserToken(user, connection, channel, code);
    check(token && typeof token.token === 'string' && token.connectionName === connection, 'getUserToken with the code: the token');
    check(typeof token.expiration === 'string' && !Number.isNaN(Date.parse(token.expiration)), 'the token has a readable expiration');

    const status = await client.getTokenStatus(user, channel);
    check(Array.isArray(status) && status.some((s) => s.connectionName === connection && s.hasToken === true), 'getTokenStatus: hasToken');

    const aad = await client.getAadTokens(user, connection, ['https://graph.microsoft.com'], channel);
    check(aad && aad['https://graph.microsoft.com'] && typeof aad['https://graph.microsoft.com'].token === 'string', 'getAadTokens: one token per resource');

    const consent = await client.exchangeToken(user, connection, channel, { token: 'not-an-sso-token' });
    check(!consent || !consent.token, 'exchangeToken with a token the service refuses: 400, no token');
    // The Teams client's SSO token for this bot (the sandbox plays Teams), then the exchange.
    const base = env.BOTAUTH_TOKEN_SERVICE_URL.replace(/\/+$/, '');
    const sso = await fetchPage(`${base}/api/sandbox/teams-sso-token?botAppId=${encodeURIComponent(env.CLIENT_ID)}`);
    check(sso.status === 200 && sso.body.split('.').length === 3, 'the sandbox minted a Teams SSO token');
    const exchanged = await client.exchangeToken(user, connection, channel, { token: sso.body.trim() });
    check(exchanged && typeof exchanged.token === 'string' && exchanged.connectionName === connection, 'exchangeToken with the SSO token: the user token');
    const uri = await client.exchangeToken(user, connection, channel, { uri: 'https://example.invalid/x' });
    check(!uri || !uri.token, 'exchangeToken by uri: 404, no token');

    let notFound;
    try {
        await client.getSignInResource('no-such-connection', activity);
    } catch (err) {
        notFound = err;
    }
    check(
        notFound && notFound.statusCode === 400 && /Could not find Connection Setting/.test(String(notFound.message) + JSON.stringify(notFound.body || '')),
        'getSignInResource for an unknown connection: 400 "Could not find Connection Setting"',
    );

    await client.signOutUser(user, connection, channel);
    const after = await client.getUserToken(user, connection, channel);
    check(!after || !after.token, 'signOutUser: the next getUserToken has no token');
}

main().catch((err) => {
    process.stderr.write(`${err && err.name}: ${err && err.message}\n`);
    process.exit(1);
});

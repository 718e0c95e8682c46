import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { DescribeExecutionCommand, SendTaskFailureCommand, SendTaskSuccessCommand, SFNClient } from '@aws-sdk/client-sfn';
import { DeleteParameterCommand, GetParameterCommand, GetParametersByPathCommand, ParameterNotFound, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { CognitoJwtVerifier } from 'aws-jwt-verify';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { AwsApprovals } from '../../../lambdas/adapters/approvals-aws.ts';
import { SsmFlagStore } from '../../../lambdas/adapters/flags-ssm.ts';
import { handleAwsPage, type HttpEvent, type PageAws } from '../../../lambdas/approvals/page-aws.ts';
import { lagReportText, REPORT_MAX_BYTES, reverifyReportText } from '../../../lambdas/adapters/reverify-aws.ts';
import { firstFormFields } from '../../helpers/page-form.ts';

const REGION = 'eu-west-1';
const POOL = 'eu-west-1_Example1';
const CLIENT = 'client123';
const HOSTED = 'https://ferry-production-123456789012.auth.eu-west-1.amazoncognito.com';
const DOMAIN = 'abc123.execute-api.eu-west-1.amazonaws.com';
const EXEC = 'arn:aws:states:eu-west-1:123456789012:execution:ferry-production-table-copy:csmh-1';

function keyPair() {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' } };
}
const trusted = keyPair();
const stranger = keyPair();

/** An ID token of the pool, signed as Cognito signs them. */
function idToken(claims: Record<string, unknown>, key: KeyObject = trusted.privateKey): string {
  const now = Math.floor(Date.now() / 1000);
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const head = b64({ alg: 'RS256', kid: 'k1', typ: 'JWT' });
  const body = b64({ iss: `https://cognito-idp.${REGION}.amazonaws.com/${POOL}`, aud: CLIENT, token_use: 'id', iat: now, exp: now + 3600, auth_time: now, sub: 'sub-1', ...claims });
  return `${head}.${body}.${sign('RSA-SHA256', new TextEncoder().encode(`${head}.${body}`), key).toString('base64url')}`;
}

const approver = () => idToken({ 'cognito:username': 'ana', email: 'ana@example.org', 'cognito:groups': ['approvers'] });
const looker = () => idToken({ 'cognito:username': 'bo', email: 'bo@example.org' });

const ssm = mockClient(SSMClient);
const sfn = mockClient(SFNClient);

function event(method: string, path: string, opts: { query?: string; cookies?: string[]; body?: string } = {}): HttpEvent {
  return { rawPath: path, rawQueryString: opts.query ?? '', cookies: opts.cookies, body: opts.body, requestContext: { domainName: DOMAIN, http: { method } } };
}

describe('the approval page on AWS', () => {
  const verifier = CognitoJwtVerifier.create({ userPoolId: POOL, tokenUse: 'id', clientId: CLIENT });
  verifier.cacheJwks({ keys: [trusted.jwk as never] });
  const exchanged: URLSearchParams[] = [];
  let aws: PageAws;
  beforeEach(() => {
    ssm.reset();
    sfn.reset();
    exchanged.length = 0;
    const ssmClient = new SSMClient({ region: REGION });
    const sfnClient = new SFNClient({ region: REGION });
    aws = {
      approvals: new AwsApprovals(ssmClient, sfnClient, '/ferry-production'),
      sfn: sfnClient,
      ssm: ssmClient,
      knobs: new SsmFlagStore(ssmClient, '/ferry-production', 'knobs'),
      root: '/ferry-production',
      deployment: 'ferry-production',
      hostedUi: HOSTED,
      clientId: async () => CLIENT,
      verify: (t) => verifier.verify(t),
      exchange: async (form) => {
        exchanged.push(form);
        return { id_token: approver() };
      },
    };
    const token = { token: 'task-token-1', execution: EXEC, machine: 'table-copy', requestedAt: '2026-12-01T09:00:00.000Z', separateFromStarter: false, summary: { rowsCopied: '1500', estimatedRows: '1500' } };
    ssm.on(GetParametersByPathCommand, { Path: '/ferry-production', Recursive: true }).resolves({ Parameters: [{ Name: '/ferry-production/csmh/approvals/cutover', LastModifiedDate: new Date('2026-12-01T09:00:00Z') }] });
    ssm.on(GetParametersByPathCommand, { Path: '/ferry-production/csmh/knobs' }).resolves({
      Parameters: [
        { Name: '/ferry-production/csmh/knobs/chunk.targetMillis', Value: '250' },
        { Name: '/ferry-production/csmh/knobs/throttle.maxThreadsRunning', Value: '5000' },
      ],
    });
    ssm.on(GetParameterCommand, { Name: '/ferry-production/csmh/approvals/cutover', WithDecryption: true }).resolves({ Parameter: { Value: JSON.stringify(token) } });
    ssm.on(GetParameterCommand, { Name: '/ferry-production/csmh/status/reverify' }).resolves({ Parameter: { Value: JSON.stringify({ note: 'verified 3 minutes ago, 40 ranges, 0 differences', differences: [] }) } });
    ssm.on(DeleteParameterCommand).resolves({});
    sfn.on(DescribeExecutionCommand, { executionArn: EXEC }).resolves({
      executionArn: EXEC, stateMachineArn: 'x', status: 'RUNNING', startDate: new Date('2026-11-30T08:00:00Z'),
      input: JSON.stringify({ migrationId: 'csmh', source: {}, target: {}, flags: { cutover: { ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES: 'false' } } }),
    });
    sfn.on(SendTaskSuccessCommand).resolves({});
    sfn.on(SendTaskFailureCommand).resolves({});
  });

  const session = (token: string) => [`__Host-ferry_session=${token}`];
  const formKeyOf = (body: string) => /name="formKey" value="([^"]+)"/.exec(body)![1]!;
  /** The hidden fields of the first form on the page (the request it was shown for, the form key). */
  const formOf = firstFormFields;
  /** Follows the 303 a decision answers with, as the browser does. */
  const follow = async (res: { statusCode: number; headers: Record<string, string> }, cookies: string[]) => {
    expect(res.statusCode).toBe(303);
    const to = new URL(res.headers.location!, `https://${DOMAIN}`);
    return handleAwsPage(event('GET', to.pathname, { query: to.search.slice(1), cookies }), aws);
  };

  it('signs a person in through the hosted UI with PKCE, then keeps the verified ID token in an HttpOnly cookie', async () => {
    expect(await handleAwsPage(event('GET', '/'), aws)).toMatchObject({ statusCode: 302, headers: { location: `https://${DOMAIN}/login` } });
    const login = await handleAwsPage(event('GET', '/login'), aws);
    const authorize = new URL(login.headers.location!);
    expect(authorize.origin + authorize.pathname).toBe(`${HOSTED}/oauth2/authorize`);
    expect(Object.fromEntries(authorize.searchParams)).toMatchObject({ response_type: 'code', client_id: CLIENT, redirect_uri: `https://${DOMAIN}/callback`, code_challenge_method: 'S256' });
    const pkce = login.cookies![0]!;
    expect(pkce).toMatch(/^__Host-ferry_pkce=[^;]+; HttpOnly; Secure; SameSite=Lax; Path=\/;/);
    const [state, verifierText] = pkce.slice('__Host-ferry_pkce='.length, pkce.indexOf(';')).split('.');
    expect(authorize.searchParams.get('state')).toBe(state);
    expect(authorize.searchParams.get('code_challenge')).toBe(createHash('sha256').update(verifierText!).digest('base64url'));

    // a callback whose state is not the one this browser started with is refused
    expect((await handleAwsPage(event('GET', '/callback', { query: 'code=c1&state=other', cookies: [pkce.split(';')[0]!] }), aws)).statusCode).toBe(400);
    const back = await handleAwsPage(event('GET', '/callback', { query: `code=c1&state=${state}`, cookies: [pkce.split(';')[0]!] }), aws);
    expect(exchanged[0]!.get('code_verifier')).toBe(verifierText);
    expect(back).toMatchObject({ statusCode: 302, headers: { location: `https://${DOMAIN}/` } });
    expect(back.cookies![0]).toMatch(/^__Host-ferry_session=[^;]+; HttpOnly; Secure; SameSite=Lax; Path=\/; Max-Age=3600$/);
  });

  it('shows a pending approval with what it rests on, and an approver\'s Approve completes the token as that person', async () => {
    const token = approver();
    // the cap the stack's config sets, as the function's environment carries it
    vi.stubEnv('FERRY_CAP_THROTTLE_MAX_THREADS_RUNNING', '150');
    const page = await handleAwsPage(event('GET', '/', { cookies: session(token) }), aws);
    vi.unstubAllEnvs();
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.body).toContain('Signed in as <strong>ana@example.org (Cognito user ana)</strong>');
    expect(page.body).toContain('Approval pending: cutover of csmh');
    expect(page.body).toContain('verified 3 minutes ago, 40 ranges, 0 differences');
    expect(page.body).toContain('ENABLE_READING_FROM_MULTIPLE_HISTORY_TABLES=false');
    expect(page.body).toContain('chunk.targetMillis=250');
    // a knob written over the deployment's cap (by hand, in SSM) is shown as ignored, with why
    expect(page.body).toContain('throttle.maxThreadsRunning=5000 (ignored: at most 150, the cap on throttle.maxThreadsRunning (set by caps.throttle.maxThreadsRunning in the stack&#39;s config on AWS');
    expect(page.body).toContain('2026-11-30T08:00:00.000Z');
    expect(formOf(page.body)).toMatchObject({ migrationId: 'csmh', step: 'cutover', execution: EXEC, requestedAt: '2026-12-01T09:00:00.000Z', decision: 'approve' });
    const body = new URLSearchParams(formOf(page.body)).toString();
    const done = await follow(await handleAwsPage(event('POST', '/decide', { cookies: session(token), body }), aws), session(token));
    expect(done.body).toContain('Approved: cutover of csmh, by ana@example.org (Cognito user ana)');
    const sent = sfn.commandCalls(SendTaskSuccessCommand)[0]!.args[0].input;
    expect(sent.taskToken).toBe('task-token-1');
    expect(JSON.parse(sent.output!)).toMatchObject({ approved: true, by: 'ana@example.org (Cognito user ana)' });
  });

  it('lets someone outside the approvers group look but not decide, and refuses a forged or expired sign-in', async () => {
    const page = await handleAwsPage(event('GET', '/', { cookies: session(looker()) }), aws);
    expect(page.body).toContain('not an approver');
    expect(page.body).not.toContain('Approve cutover');
    const key = createHash('sha256').update(looker()).digest('base64url');
    const tried = await handleAwsPage(event('POST', '/decide', { cookies: session(looker()), body: new URLSearchParams({ migrationId: 'csmh', step: 'cutover', decision: 'approve', formKey: key }).toString() }), aws);
    expect(tried.statusCode).toBe(403);
    // an approver's form key posted with another session is refused too
    const approverPage = await handleAwsPage(event('GET', '/', { cookies: session(approver()) }), aws);
    const crossed = await handleAwsPage(event('POST', '/decide', { cookies: session(looker()), body: new URLSearchParams({ migrationId: 'csmh', step: 'cutover', decision: 'reject', reason: 'x', formKey: formKeyOf(approverPage.body) }).toString() }), aws);
    expect(crossed.statusCode).toBe(403);
    // a token signed by anyone but the pool, or claiming the group it was not given, is no sign-in
    const forged = idToken({ 'cognito:username': 'mallory', 'cognito:groups': ['approvers'] }, stranger.privateKey);
    expect(await handleAwsPage(event('GET', '/', { cookies: session(forged) }), aws)).toMatchObject({ statusCode: 302, headers: { location: `https://${DOMAIN}/login` } });
    expect((await handleAwsPage(event('POST', '/decide', { cookies: session(forged), body: 'decision=approve' }), aws)).statusCode).toBe(401);
    expect(sfn.commandCalls(SendTaskSuccessCommand)).toHaveLength(0);
    expect(sfn.commandCalls(SendTaskFailureCommand)).toHaveLength(0);
  });

  it('rejects only with a reason, and says so when the approval is no longer pending', async () => {
    const token = approver();
    const shown = formOf((await handleAwsPage(event('GET', '/', { cookies: session(token) }), aws)).body);
    const post = (fields: Record<string, string>) => handleAwsPage(event('POST', '/decide', { cookies: session(token), body: new URLSearchParams({ ...shown, ...fields }).toString() }), aws);
    expect((await post({ decision: 'reject', reason: '  ' })).statusCode).toBe(400);
    const rejected = await follow(await post({ decision: 'reject', reason: 'exam week' }), session(token));
    expect(rejected.body).toContain('Rejected: cutover of csmh');
    expect(sfn.commandCalls(SendTaskFailureCommand)[0]!.args[0].input).toMatchObject({ error: 'ApprovalRejected', cause: 'cutover rejected by ana@example.org (Cognito user ana): exam week' });
    ssm.on(GetParameterCommand, { Name: '/ferry-production/csmh/approvals/cutover', WithDecryption: true }).rejects(new ParameterNotFound({ message: 'gone', $metadata: {} }));
    expect((await follow(await post({ decision: 'approve' }), session(token))).body).toContain('Nothing was decided: no approval &quot;cutover&quot; of csmh is pending');
  });

  it('decides only the request the page showed: a stale tab or a re-sent form after the request was asked for again decides nothing', async () => {
    const token = approver();
    const shown = formOf((await handleAwsPage(event('GET', '/', { cookies: session(token) }), aws)).body);
    // the execution handed over; its continuation asks for the cut-over again
    const NEXT = `${EXEC}-continued`;
    ssm.on(GetParameterCommand, { Name: '/ferry-production/csmh/approvals/cutover', WithDecryption: true }).resolves({ Parameter: { Value: JSON.stringify({ token: 'task-token-2', execution: NEXT, requestedAt: '2026-12-02T09:00:00.000Z', separateFromStarter: false }) } });
    sfn.on(DescribeExecutionCommand, { executionArn: NEXT }).resolves({ executionArn: NEXT, stateMachineArn: 'x', status: 'RUNNING', startDate: new Date('2026-12-02T08:00:00Z'), input: '{}' });
    const stale = await follow(await handleAwsPage(event('POST', '/decide', { cookies: session(token), body: new URLSearchParams(shown).toString() }), aws), session(token));
    expect(stale.body).toContain('has changed since the page was shown');
    expect(sfn.commandCalls(SendTaskSuccessCommand)).toHaveLength(0);
    // the same execution asking again (a new request time) is a new request too
    ssm.on(GetParameterCommand, { Name: '/ferry-production/csmh/approvals/cutover', WithDecryption: true }).resolves({ Parameter: { Value: JSON.stringify({ token: 'task-token-3', execution: EXEC, requestedAt: '2026-12-02T10:00:00.000Z', separateFromStarter: false }) } });
    await handleAwsPage(event('POST', '/decide', { cookies: session(token), body: new URLSearchParams(shown).toString() }), aws);
    expect(sfn.commandCalls(SendTaskSuccessCommand)).toHaveLength(0);
    // an outcome is shown only as the page signed it: a link made elsewhere shows nothing
    const forged = Buffer.from(JSON.stringify({ result: 'approved', migrationId: 'csmh', step: 'cutover', by: 'the boss' })).toString('base64url');
    expect((await handleAwsPage(event('GET', '/', { query: `outcome=${forged}.AAAA`, cookies: session(token) }), aws)).body).not.toContain('the boss');
  });

  it('asks the user pool again at each decision: someone removed from the approvers decides nothing with an ID token that still says so', async () => {
    const token = approver();
    const shown = formOf((await handleAwsPage(event('GET', '/', { cookies: session(token) }), aws)).body);
    const asked: string[] = [];
    aws = { ...aws, groupsNow: async (user) => (asked.push(user), []) };
    const tried = await handleAwsPage(event('POST', '/decide', { cookies: session(token), body: new URLSearchParams(shown).toString() }), aws);
    expect(tried.statusCode).toBe(403);
    expect(asked).toEqual(['ana']);
    expect(sfn.commandCalls(SendTaskSuccessCommand)).toHaveLength(0);
  });

  it('offers a revert on the cleanup approval only, which fails the task as RevertRequested with who and why', async () => {
    const token = approver();
    const pendingStep = (step: string) =>
      ssm.on(GetParametersByPathCommand, { Path: '/ferry-production', Recursive: true }).resolves({ Parameters: [{ Name: `/ferry-production/csmh/approvals/${step}`, LastModifiedDate: new Date('2026-12-01T09:00:00Z') }] });
    const request = (machine: string) => ({ Parameter: { Value: JSON.stringify({ token: 'task-token-9', execution: EXEC, machine, requestedAt: '2026-12-01T09:00:00.000Z', separateFromStarter: false }) } });
    // the cut-over approval of the same migration: no revert there
    pendingStep('cutover');
    ssm.on(GetParameterCommand, { Name: '/ferry-production/csmh/approvals/cutover', WithDecryption: true }).resolves(request('doctype-copy'));
    expect((await handleAwsPage(event('GET', '/', { cookies: session(token) }), aws)).body).not.toContain('Revert the cut-over');
    pendingStep('cleanup');
    ssm.on(GetParameterCommand, { Name: '/ferry-production/csmh/approvals/cleanup', WithDecryption: true }).resolves(request('doctype-copy'));
    // no lag reported yet (doctype-copy has no scheduled function)
    ssm.on(GetParameterCommand, { Name: '/ferry-production/csmh/status/lag' }).rejects(new ParameterNotFound({ message: 'none', $metadata: {} }));
    sfn.on(DescribeExecutionCommand, { executionArn: EXEC }).resolves({ executionArn: EXEC, stateMachineArn: 'x', status: 'RUNNING', startDate: new Date(), input: JSON.stringify({ migrationId: 'csmh', source: { connection: 'main', database: 'a' }, target: { connection: 'main', database: 'b' }, docTypes: ['WebUser'] }) });
    const page = await handleAwsPage(event('GET', '/', { cookies: session(token) }), aws);
    expect(page.body).toContain('Revert the cut-over');
    const revertForm = page.body.slice(page.body.indexOf('name="decision" value="revert"') - 800);
    const fields = firstFormFields(revertForm.slice(revertForm.indexOf('<form')));
    expect(fields.decision).toBe('revert');
    const post = (reason: string) => handleAwsPage(event('POST', '/decide', { cookies: session(token), body: new URLSearchParams({ ...fields, reason }).toString() }), aws);
    expect((await post('  ')).statusCode).toBe(400);
    const done = await follow(await post('queries on the new database are slow'), session(token));
    expect(done.body).toContain('Revert asked instead of the cleanup of csmh');
    expect(sfn.commandCalls(SendTaskFailureCommand)[0]!.args[0].input).toMatchObject({ taskToken: 'task-token-9', error: 'RevertRequested', cause: 'revert instead of the cleanup, asked by ana@example.org (Cognito user ana): queries on the new database are slow' });
    expect(sfn.commandCalls(SendTaskSuccessCommand)).toHaveLength(0);
  });

  it('logs every decision taken on the page, and refuses approving where the deployment separates duties', async () => {
    const token = approver();
    const logged: Record<string, unknown>[] = [];
    aws = { ...aws, log: (_m, entry) => logged.push(entry) };
    const shown = formOf((await handleAwsPage(event('GET', '/', { cookies: session(token) }), aws)).body);
    await handleAwsPage(event('POST', '/decide', { cookies: session(token), body: new URLSearchParams(shown).toString() }), aws);
    expect(logged).toEqual([expect.objectContaining({ decision: 'approve', migrationId: 'csmh', step: 'cutover', by: 'ana@example.org (Cognito user ana)', execution: EXEC, outcome: 'decided' })]);
    ssm.on(GetParameterCommand, { Name: '/ferry-production/csmh/approvals/cutover', WithDecryption: true }).resolves({ Parameter: { Value: JSON.stringify({ token: 'task-token-1', execution: EXEC, requestedAt: '2026-12-01T09:00:00.000Z', separateFromStarter: true }) } });
    const refused = await handleAwsPage(event('POST', '/decide', { cookies: session(token), body: new URLSearchParams(shown).toString() }), aws);
    expect(refused.statusCode).toBe(403);
    expect(refused.body).toContain('ferry approve csmh --step cutover --aws');
    expect(sfn.commandCalls(SendTaskSuccessCommand)).toHaveLength(1);
  });

  it("shows beside a pending cleanup approval how far the old home trails, as the scheduled function last reported it, and the re-verification's report only beside the cut-over", async () => {
    ssm.on(GetParametersByPathCommand, { Path: '/ferry-production', Recursive: true }).resolves({ Parameters: [{ Name: '/ferry-production/csmh/approvals/cleanup', LastModifiedDate: new Date('2026-12-01T09:00:00Z') }] });
    ssm.on(GetParameterCommand, { Name: '/ferry-production/csmh/approvals/cleanup', WithDecryption: true }).resolves({ Parameter: { Value: JSON.stringify({ token: 'task-token-2', execution: EXEC, machine: 'table-copy', requestedAt: '2026-12-01T09:00:00.000Z', separateFromStarter: false }) } });
    const note = 'old table: edxapp.csmh lacks the 1,204 rows the application inserted in csmh.csmhe since the copy flags (ids above 90000)';
    ssm.on(GetParameterCommand, { Name: '/ferry-production/csmh/status/lag' }).resolves({ Parameter: { Value: lagReportText('2026-12-01T10:00:00.000Z', note) } });
    const page = await handleAwsPage(event('GET', '/', { cookies: session(approver()) }), aws);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain(`${note} (reported 2026-12-01T10:00:00.000Z)`);
    expect(page.body).toContain('Revert the cut-over');
    expect(page.body, 'the re-verification report belongs to the cut-over').not.toContain('verified 3 minutes ago');
  });

  it('shows what the scheduled re-verification last reported, differences included, as it writes them', async () => {
    const differences = Array.from({ length: 40 }, (_, i) => `ids ${i * 100}..${i * 100 + 99}: ${i * 100 + 7} (differs): both tables changed after it was verified, on a server far away`);
    const text = reverifyReportText('2026-12-01T10:00:00.000Z', 'verified 2 minutes ago, 40 ranges, 40 differences', differences);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(REPORT_MAX_BYTES);
    ssm.on(GetParameterCommand, { Name: '/ferry-production/csmh/status/reverify' }).resolves({ Parameter: { Value: text } });
    const page = await handleAwsPage(event('GET', '/', { cookies: session(approver()) }), aws);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('verified 2 minutes ago, 40 ranges, 40 differences (reported 2026-12-01T10:00:00.000Z)');
    expect(page.body).toContain('ids 0..99: 7 (differs)');
    const left = JSON.parse(text).left as number;
    expect(left).toBeGreaterThan(0);
    expect(page.body).toContain(`and ${left} more spans`);
    // a report that does not read does not take the page down
    ssm.on(GetParameterCommand, { Name: '/ferry-production/csmh/status/reverify' }).resolves({ Parameter: { Value: '{"cut short' } });
    expect((await handleAwsPage(event('GET', '/', { cookies: session(approver()) }), aws)).body).toContain('its report does not read as JSON');
  });
});

describe('the approval page with a form naming no real migration', () => {
  it.each([['../../outside', 'cutover'], ['m', '../x']])('answers 400 to %s / %s and decides nothing', async (migrationId, step) => {
    const { handlePage } = await import('../../../lambdas/approvals/page.ts');
    const decided: string[] = [];
    const backend = { migrations: async () => [], decide: async (id: string, s: string) => (decided.push(`${id}/${s}`), true) };
    const res = await handlePage({ method: 'POST', path: '/decide', form: { formKey: 'k', migrationId, step, execution: 'e', decision: 'approve' } }, { name: 'ann', mayDecide: true }, backend as never, { where: 'local', formKey: 'k' });
    expect(res.status).toBe(400);
    expect(res.body).toMatch(/migrationId|step/);
    expect(decided).toEqual([]);
  });
});

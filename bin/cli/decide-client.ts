import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, Provider } from '@smithy/types';

/** What the decision endpoint answered (decide-endpoint.ts): its status and JSON body. */
export interface EndpointAnswer {
  readonly httpStatus: number;
  readonly status: string;
  readonly message?: string;
  readonly execution?: string;
  readonly by?: string;
  readonly pending?: readonly { readonly migrationId: string; readonly step: string }[];
}

/** The region of an API Gateway address (`https://<id>.execute-api.<region>.amazonaws.com/…`). */
export function regionOfApi(url: URL): string {
  const m = /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/.exec(url.hostname);
  if (!m) throw new Error(`${url.origin} is not an API Gateway address`);
  return m[1]!;
}

/**
 * Asks the deployment's decision endpoint to decide, signing the request with the caller's AWS
 * credentials (SigV4, service execute-api): API Gateway checks the signature and the approvers'
 * policy, the function checks the rest. The caller never holds the callback token.
 */
export async function askEndpoint(
  url: URL,
  body: { migrationId: string; step: string; decision: 'approve' | 'reject' | 'revert'; reason?: string; execution?: string },
  opts: { region: string; credentials: AwsCredentialIdentity | Provider<AwsCredentialIdentity>; fetch?: typeof fetch },
): Promise<EndpointAnswer> {
  const text = JSON.stringify(body);
  const signer = new SignatureV4({ service: 'execute-api', region: opts.region, credentials: opts.credentials, sha256: Hash.bind(null, 'sha256') });
  const signed = await signer.sign({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    path: url.pathname,
    query: {},
    headers: { host: url.host, 'content-type': 'application/json' },
    body: text,
  });
  const res = await (opts.fetch ?? fetch)(url, { method: 'POST', headers: signed.headers as Record<string, string>, body: text });
  const raw = await res.text();
  let answer: Partial<EndpointAnswer> = {};
  try {
    answer = JSON.parse(raw) as Partial<EndpointAnswer>;
  } catch {
    // API Gateway's own refusals (a missing or bad signature, no permission) are {"message": …}; anything else is said as it came.
    answer = { message: raw.slice(0, 500) };
  }
  return { ...answer, httpStatus: res.status, status: answer.status ?? (res.status === 403 ? 'forbidden' : 'error') };
}

import { S3Client } from '@aws-sdk/client-s3'

export interface S3ClientOptions {
  forcePathStyle?: boolean
  /**
   * How long a connection may sit silent (no byte either way) before the request fails: a dead or wedged
   * endpoint fails instead of hanging, while a long transfer that keeps moving is never cut.
   */
  idleTimeoutMs?: number
  connectionTimeoutMs?: number
  /** only for tests: production takes endpoint and credentials from the SDK's chain (AWS_* env, profiles) */
  endpoint?: string
  credentials?: { accessKeyId: string, secretAccessKey: string }
  region?: string
}

/**
 * The SDK client as pgkeep uses it. Endpoint, region and credentials come from the SDK's standard chain
 * (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE):
 * we read none of them ourselves. The one exception: with no region configured anywhere we use us-east-1,
 * because MinIO, Garage and most self-hosted stores ignore the region but the SDK refuses to sign without one.
 */
export function createS3Client (opts: S3ClientOptions = {}): S3Client {
  const chainRegion = new S3Client({}).config.region
  return new S3Client({
    region: opts.region ?? (async () => { try { return await chainRegion() } catch { return 'us-east-1' } }),
    forcePathStyle: opts.forcePathStyle,
    ...(opts.endpoint !== undefined ? { endpoint: opts.endpoint } : {}),
    ...(opts.credentials !== undefined ? { credentials: opts.credentials } : {}),
    // the SDK retries throttling, 5xx and dropped connections itself; parts get a further bounded retry of ours
    maxAttempts: 3,
    // We send SHA-256 part checksums ourselves; the SDK's default CRC32 on every request is refused or
    // mishandled by several S3-compatible stores (older MinIO, B2, R2 before 2025), so only where required.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // the SDK builds its Node handler from these options (no import of @smithy/node-http-handler, not ours)
    requestHandler: {
      connectionTimeout: opts.connectionTimeoutMs ?? 10_000,
      socketTimeout: opts.idleTimeoutMs ?? 60_000,
    },
  })
}

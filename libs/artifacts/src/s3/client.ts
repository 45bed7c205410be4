import { S3Client } from '@aws-sdk/client-s3';

/**
 * The S3 client artifacts are read and written with. Credentials and region come from the AWS SDK's standard
 * sources (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_PROFILE, instance roles; AWS_REGION,
 * default us-east-1). S3_ENDPOINT_URL, else AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL names an S3-compatible server
 * (MinIO, moto, Ceph): it is then addressed path-style (`endpoint/bucket/key`), as such servers expect, and
 * S3_FORCE_PATH_STYLE=1 forces that for AWS too. Checksums are only sent where S3 requires them: several
 * S3-compatible servers reject the SDK's default CRC32 trailers (our own sha256 covers integrity).
 */
export interface S3Settings {
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
}

export function s3SettingsFromEnv(env: NodeJS.ProcessEnv = process.env): S3Settings {
  const endpoint = [env.S3_ENDPOINT_URL, env.AWS_ENDPOINT_URL_S3, env.AWS_ENDPOINT_URL].map((e) => e?.trim()).find((e) => e);
  return {
    endpoint,
    region: env.AWS_REGION?.trim() || env.AWS_DEFAULT_REGION?.trim() || 'us-east-1',
    forcePathStyle: endpoint !== undefined || env.S3_FORCE_PATH_STYLE === '1',
  };
}

let cached: { key: string; client: S3Client } | undefined;

/** One client per distinct setting (the environment is read on each call, so tests may change it). */
export function s3Client(env: NodeJS.ProcessEnv = process.env): S3Client {
  const settings = s3SettingsFromEnv(env);
  const key = JSON.stringify([settings, env.AWS_ACCESS_KEY_ID ?? '', env.AWS_PROFILE ?? '']);
  if (cached?.key !== key) {
    cached?.client.destroy();
    cached = {
      key,
      client: new S3Client({
        ...settings,
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      }),
    };
  }
  return cached.client;
}

/** The multipart part size: S3_MULTIPART_PART_BYTES when at least S3's 5 MiB minimum, else 8 MiB. */
export const MIN_PART_BYTES = 5 * 1024 * 1024;
export function multipartPartBytes(env: NodeJS.ProcessEnv = process.env): number {
  const value = Number(env.S3_MULTIPART_PART_BYTES?.trim() ?? '');
  return Number.isInteger(value) && value >= MIN_PART_BYTES ? value : 8 * 1024 * 1024;
}

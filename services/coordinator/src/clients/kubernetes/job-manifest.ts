import { createHash } from 'node:crypto';
import * as path from 'node:path';
import type { JobObject, ServiceObject } from './api-client';

// The batch/v1 Job that runs one LEARN stage's trainer job (trainer jobs/cli.py `run`) on GPU nodes: an Indexed Job
// with one pod per node, each running `accelerate launch` for its node's GPUs; pod 0 is the rendezvous (a headless
// Service of the Job's name gives it a DNS name). The Job ends with the training, and with it the GPU requests.

export interface Toleration {
  key?: string;
  operator?: 'Exists' | 'Equal';
  value?: string;
  effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
}

/** How LEARN Jobs are shaped: the coordinator's K8S_LEARN_* settings (learn-config.ts). */
export interface LearnJobTemplate {
  /** The trainer image (the same one the trainer Deployment runs). */
  image: string;
  /** Pods (nodes) per Job: parallelism = completions = nodes. */
  nodes: number;
  /** nvidia.com/gpu per pod; accelerate starts one process per GPU (one process when 0). */
  gpusPerNode: number;
  nodeSelector: Record<string, string>;
  tolerations: Toleration[];
  /** The shared data volume's claim, mounted at dataMountPath (the coordinator's DATA_DIR: URIs are paths). */
  dataClaim: string;
  dataMountPath: string;
  /** The pods' ServiceAccount (no API token is mounted). */
  serviceAccount: string;
  /** accelerate config file inside the image (e.g. /app/accelerate/fsdp.yaml); none: accelerate's defaults. */
  accelerateConfig?: string;
  resources: { cpuRequest: string; cpuLimit: string; memoryRequest: string; memoryLimit: string };
  /** /dev/shm (memory emptyDir) for NCCL and DataLoader workers. */
  shmSize: string;
  /** The Job (and its pods) are deleted this long after it ends. */
  ttlSecondsAfterFinished: number;
  /**
   * Pod failures (kills, crashes; not the job's own failure, exit 1 or 2) before the Job fails; each new pod resumes
   * from the work dir's checkpoint. Once the Job failed, a resume of the run starts a new attempt from scratch.
   */
  backoffLimit: number;
  /** Port of the torch distributed rendezvous on pod 0 (multi-node). */
  rendezvousPort: number;
  /** Environment of the trainer pods (DRO_SOLVER_ADDRESS, tracing…). */
  env: Record<string, string>;
  /** Secret with tls.crt, tls.key, ca.crt for the trainer's calls to the DRO solver (TLS_*_FILE); none: plaintext. */
  tlsSecret?: string;
  /**
   * Secret whose keys become the pods' environment (envFrom): the object store's credentials and endpoint
   * (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, S3_ENDPOINT_URL, AWS_REGION…), for s3:// inputs and outputs. Only
   * its name is in the Job: the values never are.
   */
  objectStoreSecret?: string;
}

export const LABELS = {
  app: 'app',
  partOf: 'app.kubernetes.io/part-of',
  managedBy: 'app.kubernetes.io/managed-by',
  /** On the Job, its Service and its pods: the Job's name (how the executor finds the pods). */
  learnJob: 'alignment.dev/learn-job',
  /** The stage (run, round) whatever the attempt: how a new attempt finds the Jobs of earlier ones. */
  learnStage: 'alignment.dev/learn-stage',
} as const;
/** The `app` label of LEARN Job pods (the network policies select it). */
export const LEARN_JOB_APP = 'learn-job';
/** Annotation with the coordinator's job id, checked when re-attaching to a Job found by name. */
export const JOB_ID_ANNOTATION = 'alignment.dev/job-id';

/**
 * A DNS-1123 name for the Job, deterministic in the job id (run, nonce, round, attempt), so that a restarted
 * coordinator finds the Job it created. At most 52 characters: pod hostnames append "-<index>" and must fit 63.
 */
export function learnJobName(jobId: string): string {
  const hash = createHash('sha256').update(jobId).digest('hex').slice(0, 10);
  const slug = jobId.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 34).replace(/-+$/, '');
  return slug ? `learn-${slug}-${hash}` : `learn-${hash}`;
}

/** Paths of one job on the data volume, as the pods and the coordinator both see them. */
export interface LearnJobPaths {
  spec: string;
  /** Where the job trains: its output directory, or the staging copy of an s3:// output. */
  output: string;
  workDir: string;
  /** The spec's s3:// output_uri: the job publishes `output` there when it succeeds (the CLI's --publish-uri). */
  publishUri?: string;
}

function launchCommand(name: string, template: LearnJobTemplate, paths: LearnJobPaths): string[] {
  const perNode = Math.max(1, template.gpusPerNode);
  const cmd = ['python', '-m', 'accelerate.commands.launch'];
  if (template.accelerateConfig) cmd.push('--config_file', template.accelerateConfig);
  cmd.push('--num_machines', String(template.nodes), '--num_processes', String(perNode * template.nodes));
  if (template.nodes > 1) {
    // $(VAR) is expanded by the kubelet from the container's env (MACHINE_RANK below).
    cmd.push('--machine_rank', '$(MACHINE_RANK)', '--main_process_ip', `${name}-0.${name}`, '--main_process_port', String(template.rendezvousPort));
  }
  cmd.push('-m', 'alignment_trainer.cli', 'run', '--spec', paths.spec, '--output', paths.output, '--work-dir', paths.workDir);
  if (paths.publishUri) cmd.push('--publish-uri', paths.publishUri);
  return cmd;
}

/** The learn-stage label's value: a hash of the stage directory (the parent of every attempt's output). */
export function learnStageKey(paths: LearnJobPaths): string {
  return createHash('sha256').update(path.dirname(paths.output)).digest('hex').slice(0, 20);
}

export function learnJobManifest(args: { name: string; namespace: string; jobId: string; template: LearnJobTemplate; paths: LearnJobPaths }): JobObject {
  const { name, namespace, jobId, template: t, paths } = args;
  const labels = {
    [LABELS.app]: LEARN_JOB_APP,
    [LABELS.partOf]: 'alignment',
    [LABELS.managedBy]: 'alignment-coordinator',
    [LABELS.learnJob]: name,
    [LABELS.learnStage]: learnStageKey(paths),
  };
  const env: { name: string; value?: string; valueFrom?: unknown }[] = Object.entries(t.env).map(([k, v]) => ({ name: k, value: v }));
  env.push({ name: 'MACHINE_RANK', valueFrom: { fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" } } });
  const mounts: { name: string; mountPath: string; readOnly?: boolean }[] = [
    { name: 'data', mountPath: t.dataMountPath },
    { name: 'tmp', mountPath: '/tmp' },
    { name: 'dshm', mountPath: '/dev/shm' },
  ];
  const volumes: Record<string, unknown>[] = [
    { name: 'data', persistentVolumeClaim: { claimName: t.dataClaim } },
    { name: 'tmp', emptyDir: { sizeLimit: '8Gi' } },
    { name: 'dshm', emptyDir: { medium: 'Memory', sizeLimit: t.shmSize } },
  ];
  if (t.tlsSecret) {
    mounts.push({ name: 'tls', mountPath: '/etc/alignment/tls', readOnly: true });
    volumes.push({ name: 'tls', secret: { secretName: t.tlsSecret, defaultMode: 0o440 } });
    env.push(
      { name: 'TLS_CERT_FILE', value: '/etc/alignment/tls/tls.crt' },
      { name: 'TLS_KEY_FILE', value: '/etc/alignment/tls/tls.key' },
      { name: 'TLS_CA_FILE', value: '/etc/alignment/tls/ca.crt' },
    );
  }
  const limits: Record<string, string> = { cpu: t.resources.cpuLimit, memory: t.resources.memoryLimit };
  if (t.gpusPerNode > 0) limits['nvidia.com/gpu'] = String(t.gpusPerNode);
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace, labels, annotations: { [JOB_ID_ANNOTATION]: jobId } },
    spec: {
      completionMode: 'Indexed',
      completions: t.nodes,
      parallelism: t.nodes,
      backoffLimit: t.backoffLimit,
      ttlSecondsAfterFinished: t.ttlSecondsAfterFinished,
      // The job CLI exits 1 when the job failed and 2 for a bad spec: retrying cannot help, the Job fails at once. A
      // drained or preempted node does not count as a failure. Other exits (a kill, a crash) count against
      // backoffLimit; the new pod resumes from the checkpoint in the work dir.
      podFailurePolicy: {
        rules: [
          { action: 'FailJob', onExitCodes: { containerName: 'trainer', operator: 'In', values: [1, 2] } },
          { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
        ],
      },
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: 'Never',
          subdomain: name,
          serviceAccountName: t.serviceAccount,
          automountServiceAccountToken: false,
          nodeSelector: t.nodeSelector,
          tolerations: t.tolerations,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 10001,
            runAsGroup: 10001,
            fsGroup: 10001,
            fsGroupChangePolicy: 'OnRootMismatch',
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [
            {
              name: 'trainer',
              image: t.image,
              command: launchCommand(name, t, paths),
              env,
              ...(t.objectStoreSecret ? { envFrom: [{ secretRef: { name: t.objectStoreSecret } }] } : {}),
              ports: t.nodes > 1 ? [{ name: 'rendezvous', containerPort: t.rendezvousPort }] : [],
              resources: { requests: { cpu: t.resources.cpuRequest, memory: t.resources.memoryRequest }, limits },
              securityContext: {
                allowPrivilegeEscalation: false,
                privileged: false,
                readOnlyRootFilesystem: true,
                runAsNonRoot: true,
                capabilities: { drop: ['ALL'] },
                seccompProfile: { type: 'RuntimeDefault' },
              },
              volumeMounts: mounts,
            },
          ],
          volumes,
        },
      },
    },
  };
}

/** The headless Service that gives pod 0 its rendezvous name; owned by the Job, so it is deleted with it. */
export function rendezvousService(job: JobObject, template: LearnJobTemplate): ServiceObject {
  const name = job.metadata.name;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name,
      namespace: job.metadata.namespace,
      labels: job.metadata.labels,
      ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name, uid: job.metadata.uid ?? '', controller: false }],
    },
    spec: {
      clusterIP: 'None',
      publishNotReadyAddresses: true,
      selector: { [LABELS.learnJob]: name },
      ports: [{ name: 'rendezvous', port: template.rendezvousPort }],
    },
  };
}

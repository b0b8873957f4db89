import { z } from 'zod';
import type { Quantity } from '../workflows/plan/quantity';
import { fleetTooLarge } from '../workflows/plan/run-limits';
import { duration } from './duration';
import { hiddenCharacterIn, hiddenCharacterMessage } from './text';

const namePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const versionPattern = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;

/**
 * Text a user writes that reaches a command, a path or a terminal: no control, invisible or bidirectional-override
 * character, so that what an operator reads in the spec is what Baton runs. The first such character is named and
 * the field's other checks are skipped, since their message would not say what is wrong.
 */
export const visibleText = (error: string) =>
  z.string({ error }).superRefine((text, ctx) => {
    const found = hiddenCharacterIn(text);
    if (found) ctx.addIssue({ code: 'custom', message: hiddenCharacterMessage(found), continue: false });
  });

/**
 * A path the worker opens. The worker runs elsewhere, in another directory, than the CLI that read the spec, so a
 * relative path would name another file there.
 */
const absolutePath = (what: string) =>
  visibleText(`expected the absolute path of ${what}`).refine((path) => path.startsWith('/'), {
    message: `expected the absolute path of ${what}, starting with "/": the worker resolves nothing against the directory the spec was written in`,
  });

/** An http(s) URL as written: the URL parser would percent-encode a hidden character instead of refusing it. */
const httpUrl = visibleText('expected an http:// or https:// URL').pipe(
  z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }),
);

/** Whole numbers a count can hold: far above any fleet, and exact in JavaScript and in Temporal's payloads. */
export const maxCount = 1_000_000;
const count = (error: string) =>
  z
    .number({ error })
    .int(error)
    .min(0, error)
    .max(maxCount, `expected at most ${maxCount.toLocaleString('en-US')}`);

/** A name that becomes part of workflow ids, HAProxy commands and argv: letters, digits, ".", "_" and "-". */
export const resourceName = visibleText('expected a name').regex(
  namePattern,
  'expected 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit',
);

/** A version as it reaches commands and image tags, so it cannot carry spaces, quotes or shell syntax. */
export const versionString = visibleText('expected a version such as "v2" or "1.4.0"').regex(
  versionPattern,
  'expected a version of letters, digits, ".", "_", "+" or "-", such as "v2" or "1.4.0"',
);

/** A count (`2`) or a percentage of the total (`"25%"`). */
export const quantity = z
  .union([count('expected a whole number such as 2'), z.string().regex(/^\d{1,3}%$/)], {
    error: 'expected a whole number such as 2 or a percentage such as "25%"',
  })
  .transform((value, ctx): Quantity => {
    if (typeof value === 'number') return { kind: 'count', value };
    const pct = Number(value.slice(0, -1));
    if (pct > 100) {
      ctx.addIssue({ code: 'custom', message: `expected a percentage from 0% to 100%, got ${value}` });
      return z.NEVER;
    }
    return { kind: 'percent', value: pct };
  });

/** Placeholders an upgrade argv may use; each is replaced inside one argv element, never through a shell. */
export const argvPlaceholders = ['name', 'address', 'host', 'port', 'version'] as const;
const placeholderPattern = /\{([^{}]*)\}/g;

/**
 * An argv template whose {placeholders} must be among `placeholders`. The program is a name the worker's PATH finds
 * (`ssh`) or an absolute path: a relative one would resolve against the worker's directory, not the spec's.
 */
function argvTemplateOf(placeholders: readonly string[]) {
  return z
    .array(visibleText('expected an argument').min(1, 'expected a non-empty argument'), {
      error: 'expected a list of arguments',
    })
    .min(1, 'expected at least the program to run')
    .max(256, 'expected at most 256 arguments')
    .superRefine((argv, ctx) => {
      const program = argv[0] ?? '';
      if (program.includes('/') && !program.startsWith('/'))
        ctx.addIssue({
          code: 'custom',
          path: [0],
          message: `expected a program on the worker's PATH or an absolute path, got the relative path "${program}": the worker runs in its own directory`,
        });
      argv.forEach((arg, index) => {
        for (const [, key] of arg.matchAll(placeholderPattern)) {
          if (!placeholders.includes(key ?? '')) {
            ctx.addIssue({
              code: 'custom',
              path: [index],
              message: `unknown placeholder {${key}}; expected one of ${placeholders.map((p) => `{${p}}`).join(', ')}`,
            });
          }
        }
      });
    });
}

const argvTemplate = argvTemplateOf(argvPlaceholders);

/** Placeholders of a hook's argv: the target's name and the version being rolled out. */
export const hookPlaceholders = ['name', 'version'] as const;

/** A command Baton runs once per rollout, on the worker, without a shell (e.g. a schema migration). */
export const hookCommand = z.strictObject({
  argv: argvTemplateOf(hookPlaceholders),
  timeout: duration.default(600_000),
});

const address = z
  .string({ error: 'expected host:port' })
  .regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, 'expected host:port such as 127.0.0.1:8081')
  .refine((a) => Number(a.split(':')[1]) <= 65535, 'expected a port from 1 to 65535');

export const fleetServer = z.strictObject({
  /** The server's name, as HAProxy knows it in the backend. */
  name: resourceName,
  /** Where the server listens, host:port. */
  address,
  /** Health URL verified after an upgrade; defaults to http://<address><verify.http.path>. */
  healthUrl: httpUrl.optional(),
});

export const haproxyLoadBalancer = z.strictObject({
  /** Absolute path of the HAProxy Runtime API (admin) unix socket, on the worker's machine. */
  socket: absolutePath('the admin socket'),
  /** The backend that holds the fleet's servers. */
  backend: resourceName,
});

/** Placeholders of a create argv: the new server's name (chosen by Baton) and its version. */
export const createPlaceholders = ['name', 'version'] as const;

/**
 * How Baton makes and unmakes servers, for the strategies that replace servers instead of upgrading them
 * (surge, blue-green, rolling by replacement). Both are argv templates run on the worker without a shell.
 */
export const fleetProvision = z.strictObject({
  /** Creates one server running {version}, named {name}; the last line of its stdout is the server's host:port. */
  create: z.strictObject({
    argv: argvTemplateOf(createPlaceholders),
    timeout: duration.default(300_000),
  }),
  /** Destroys one server, once it is out of the backend. Same placeholders as upgrade. */
  destroy: z.strictObject({
    argv: argvTemplate,
    timeout: duration.default(300_000),
  }),
  /**
   * The settings `add server` gives a new server, as the backend's own servers have them: health checks at
   * least, so HAProxy knows when it is UP. Each element is one HAProxy keyword or value.
   */
  serverOptions: z
    .array(
      z.union(
        [
          z
            .string()
            .regex(
              /^[A-Za-z0-9._:/%-]+$/,
              'expected an HAProxy server keyword or value, such as "check" or 2',
            ),
          // YAML reads `rise, 2` as a number.
          count('expected an HAProxy server keyword or value').transform(String),
        ],
        { error: 'expected an HAProxy server keyword or value, such as "check" or 2' },
      ),
    )
    .max(64)
    .default(['check']),
});

export const fleetTarget = z.strictObject({
  kind: z.literal('fleet'),
  /** Names the target; one rollout runs per target at a time (workflow id "rollout/<name>"). */
  name: resourceName,
  loadBalancer: z.strictObject({ haproxy: haproxyLoadBalancer }),
  /** The servers, when Baton does not create them; with provision, the fleet is what the backend holds. */
  servers: z.array(fleetServer).default([]),
  /** How to move one server to a version in place: an argv template, run without a shell. */
  upgrade: z
    .strictObject({
      argv: argvTemplate,
      timeout: duration.default(120_000),
    })
    .optional(),
  provision: fleetProvision.optional(),
});

/** The path of a URL on a server or pod, asked for at its own address. */
const httpPath = visibleText('expected a path starting with "/"')
  .startsWith('/', 'expected a path starting with "/"')
  .max(2048);

const metricName = z
  .string({ error: 'expected a Prometheus metric name' })
  .regex(/^[a-zA-Z_:][a-zA-Z0-9_:]{0,199}$/, 'expected a Prometheus metric name such as http_requests_total');

/**
 * Where each pod reports its own request figures, in Prometheus' text format, for a canary analysis to compare the
 * new version's pods with the old one's. The counters are read from each pod at its own address, as Prometheus
 * scrapes them, at the start and the end of the analysis window.
 */
export const podMetrics = z.strictObject({
  /** The port of the metrics page; the container's first containerPort if unset. */
  port: z.number().int().min(1).max(65_535).optional(),
  path: httpPath.default('/metrics'),
  /** A counter of answered requests, labelled with their status code; its 5xx share is the error rate. */
  requests: metricName,
  /** The label of `requests` that holds the status code. */
  codeLabel: z
    .string()
    .regex(/^[a-zA-Z_][a-zA-Z0-9_]{0,99}$/, 'expected a Prometheus label name')
    .default('code'),
  /** A summary or histogram of request durations in seconds; its _sum over its _count is the mean response time. */
  duration: metricName.optional(),
});

export const kubernetesTarget = z.strictObject({
  kind: z.literal('kubernetes'),
  name: resourceName,
  namespace: resourceName.default('default'),
  deployment: resourceName,
  container: resourceName,
  /** Image repository; the rollout's version is its tag. */
  image: z
    .string()
    .regex(/^[a-z0-9][a-z0-9./:_-]*$/, 'expected an image repository such as registry.local/web'),
  /**
   * side-by-side: each version gets its own Deployment (`<deployment>-<version>`), scaled against the old one by
   * Baton. native: Baton changes the image of this one Deployment and lets its controller roll it, pausing through
   * spec.paused and undoing to the previous ReplicaSet's template, for those who keep a single Deployment.
   */
  mode: z
    .enum(['side-by-side', 'native'], { error: 'expected "side-by-side" or "native"' })
    .default('side-by-side'),
  /** The Service in front of the pods: Baton takes a pod out of it before the pod goes. */
  service: resourceName.optional(),
  /**
   * How long a pod stays up after it has left the Service's EndpointSlices, before it is sent SIGTERM: the time every
   * proxy routing to the Service (kube-proxy on each node, an ingress controller) may take to stop opening new
   * connections to it. kube-proxy took up to 2 s on a loaded test machine; a preStop sleep does the same job.
   */
  detachDelay: duration
    .default(3_000)
    .refine(
      (ms) => ms <= 60_000,
      "expected at most 1m: longer belongs in the pod's terminationGracePeriodSeconds",
    ),
  /** A step fails when no more of the pods it waits for become available for this long (a progress deadline). */
  readyTimeout: duration.default(300_000),
  /** Seconds a new pod must stay Ready before it counts as available (the Deployment's minReadySeconds). */
  minReadySeconds: z.number().int().min(0).max(3_600).default(0),
  /** The pods' request figures, for a canary analysis; without them an analysis checks pod availability only. */
  metrics: podMetrics.optional(),
});

const pauseFields = {
  duration: duration.optional(),
  timeout: duration.optional(),
  onTimeout: z.enum(['promote', 'abort'], { error: 'expected "promote" or "abort"' }).default('abort'),
};

const durationOrTimeout = (pause: { duration?: number; timeout?: number }, ctx: z.RefinementCtx) => {
  if (pause.duration !== undefined && pause.timeout !== undefined)
    ctx.addIssue({
      code: 'custom',
      path: ['timeout'],
      message: 'expected duration (a timed pause) or timeout (an approval gate), not both',
    });
};

/** With a duration, a timed pause (`baton promote` ends it early); without, an approval gate. */
export const pauseStep = z.strictObject(pauseFields).superRefine(durationOrTimeout);

export const rolloutPause = z
  .strictObject({
    after: count('expected the number of the batch or step to pause after').min(
      1,
      'expected the number of the batch or step to pause after, at least 1',
    ),
    ...pauseFields,
  })
  .superRefine(durationOrTimeout);

/** When nothing moves for this long, abort (roll back) or pause for an operator: a stuck rollout never hangs. */
export const progressDeadline = z.strictObject({
  timeout: duration,
  action: z.enum(['abort', 'pause'], { error: 'expected "abort" or "pause"' }).default('abort'),
});

/** Rollout events a webhook hears about. */
export const notificationEvents = [
  'started',
  'paused',
  'promoted',
  'succeeded',
  'rolled-back',
  'failed',
] as const;

export const webhook = z
  .strictObject({
    /** The URL to POST to, when it is not a secret. */
    url: httpUrl.optional(),
    /**
     * The name of an environment variable of the worker that holds the URL (Slack webhook URLs are secrets):
     * read by the activity that sends, so the URL never enters the workflow's input or history.
     */
    urlFromEnv: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/, 'expected an environment variable name such as SLACK_WEBHOOK_URL')
      .optional(),
    /** json: Baton's event object; slack: a Slack-compatible `{"text": ...}` message. */
    format: z.enum(['json', 'slack'], { error: 'expected "json" or "slack"' }).default('json'),
    events: z
      .array(z.enum(notificationEvents, { error: `expected one of ${notificationEvents.join(', ')}` }))
      .default([...notificationEvents]),
  })
  .superRefine((hook, ctx) => {
    if ((hook.url === undefined) === (hook.urlFromEnv === undefined))
      ctx.addIssue({ code: 'custom', message: 'expected exactly one of url and urlFromEnv' });
  });

export const notifications = z.strictObject({ webhook });

export const rollingStrategy = z.strictObject({
  type: z.literal('rolling'),
  /** Fleets: servers moved per batch, a count or a percentage rounded up; 1 when not given. */
  batchSize: quantity.optional(),
  /**
   * At most this many out of rotation at once, rounded down. Fleets: at least 1, defaults to the batch size.
   * Kubernetes: pods below the desired count, defaults to 25% as in a Deployment.
   */
  maxUnavailable: quantity.optional(),
  /** Kubernetes: pods above the desired count while both versions run, rounded up; defaults to 25%. */
  maxSurge: quantity.optional(),
  /** Wait between batches, e.g. to watch metrics. */
  pauseBetweenBatches: duration.default(0),
  /**
   * Fleets: in-place upgrades each server where it stands; replace creates a new server for each old one
   * (target.provision), puts it in rotation, then takes the old one out.
   */
  method: z.enum(['in-place', 'replace'], { error: 'expected "in-place" or "replace"' }).default('in-place'),
  /**
   * Pauses at chosen points: after the Nth batch (fleets) or the Nth scale-up of the new version (Kubernetes
   * side-by-side). With a duration, a timed pause (`baton promote` ends it early); without, an approval gate that
   * waits for `baton promote`, up to `timeout` if given, then does `onTimeout`.
   */
  pauses: z.array(rolloutPause).max(100).default([]),
});

export const recreateStrategy = z.strictObject({
  type: z.literal('recreate'),
  /**
   * Runs after every old server or pod has stopped and before the new version starts, e.g. a schema migration
   * the two versions can't share; when it fails, the old version is started again.
   */
  preStep: hookCommand.optional(),
});

export const blueGreenStrategy = z.strictObject({
  type: z.literal('blue-green'),
  /** Switch traffic as soon as the new set is available; false: wait for `baton promote` first. */
  autoPromote: z.boolean().default(true),
  /** How long the old set is kept, idle, after the switch: the instant way back. */
  scaleDownDelay: duration.default(30_000),
  /**
   * Kubernetes: a Service of yours that Baton points at the new set while it waits, so checks and people can try
   * it before any user does; afterwards it selects what the main Service selects. Fleets need none: each new
   * server is checked at its own address.
   */
  previewService: resourceName.optional(),
});

/**
 * A canary analysis: watch the canary servers' answers against the stable servers' for a window, from the load
 * balancer's own counters, or on Kubernetes from each pod's metrics page (`target.metrics`); any threshold crossed
 * fails it, and the rollout rolls back on its own. On Kubernetes every canary pod must also stay available,
 * without a restart, for the window; without `target.metrics` that is the whole analysis.
 */
export const canaryAnalysis = z.strictObject({
  window: duration.default(30_000),
  /** Fewer canary requests than this in the window fails the analysis (too little to judge); 20 if unset. */
  minRequests: count('expected a whole number of requests').min(1).optional(),
  /** The canary's share of 5xx answers, in percent, at most this; 5 if unset. */
  maxErrorRate: z.number().min(0).max(100).optional(),
  /** The canary's 5xx share at most this many percentage points above the stable servers'; 1 if unset. */
  maxErrorRateIncrease: z.number().min(0).max(100).optional(),
  /** The canary's mean response time at most this multiple of the stable servers'; 2 if unset. */
  maxResponseTimeRatio: z.number().min(1).max(100).optional(),
});

export const canaryStep = z.union(
  [
    z.strictObject({
      /** The canary's share of traffic, in percent. */
      setWeight: z
        .number({ error: 'expected a percentage from 1 to 100' })
        .int('expected a whole percentage')
        .min(1, 'expected a percentage from 1 to 100')
        .max(100, 'expected a percentage from 1 to 100'),
    }),
    z.strictObject({ pause: pauseStep }),
    z.strictObject({ analysis: canaryAnalysis }),
  ],
  { error: 'expected a step { setWeight: N }, { pause: {...} } or { analysis: {...} }' },
);

export const canaryStrategy = z.strictObject({
  type: z.literal('canary'),
  /** Run in order; after the last, the new version is promoted to everyone. */
  steps: z.array(canaryStep).min(1, 'expected at least one step').max(100),
  /** Fleets: servers moved per batch when promoting to everyone, a count or a percentage; 1 when not given. */
  batchSize: quantity.optional(),
});

export const surgeStrategy = z.strictObject({
  type: z.literal('surge'),
  /**
   * Servers or pods created per round, a count or a share of the fleet; then as many of the oldest leave. 100%
   * (the default) doubles the fleet once, then removes the old half.
   */
  batchSize: quantity.default({ kind: 'percent', value: 100 }),
});

export const strategyTypes = ['rolling', 'recreate', 'blue-green', 'canary', 'surge'] as const;

export const strategy = z.discriminatedUnion(
  'type',
  [rollingStrategy, recreateStrategy, blueGreenStrategy, canaryStrategy, surgeStrategy],
  {
    error: (issue) =>
      issue.code === 'invalid_union'
        ? `expected strategy type ${strategyTypes.map((t) => `"${t}"`).join(', ')}`
        : undefined,
  },
);

export const drainPolicy = z.strictObject({
  /** How long to wait for a detached server's sessions, queue and connections to reach zero. */
  timeout: duration.default(60_000),
  /** Past the timeout: keep waiting, go on anyway (cutting what is left), or fail the server. */
  onTimeout: z
    .enum(['wait', 'force', 'fail'], { error: 'expected "wait", "force" or "fail"' })
    .default('fail'),
  pollInterval: duration.default(250),
});

export const httpVerification = z.strictObject({
  path: httpPath.default('/healthz'),
  expectStatus: z.number().int().min(100).max(599).default(200),
  /** Where the server reports its version: a response header, or a top-level field of a JSON body. */
  versionFrom: z
    .union(
      [
        z.strictObject({
          header: z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,256}$/, 'expected an HTTP header name'),
        }),
        z.strictObject({ json: visibleText('expected a JSON field name').min(1).max(256) }),
      ],
      {
        error: 'expected { header: <name> } or { json: <field> }',
      },
    )
    .default({ json: 'version' }),
  /** Consecutive passing checks before the server counts as verified. */
  passes: z.number().int().min(1).max(100).default(3),
  interval: duration.default(500),
  /** Give up (and fail the server) after this long. */
  timeout: duration.default(30_000),
  /** Timeout of one request. */
  requestTimeout: duration.default(2_000),
});

export const rolloutSpecSchema = z
  .strictObject({
    apiVersion: z.literal('baton.dev/v1', { error: 'expected "baton.dev/v1"' }).default('baton.dev/v1'),
    kind: z.literal('Rollout', { error: 'expected "Rollout"' }).default('Rollout'),
    /** What is rolled out: a fleet behind a load balancer, or a Kubernetes Deployment. */
    target: z.discriminatedUnion('kind', [fleetTarget, kubernetesTarget], {
      error: (issue) =>
        issue.code === 'invalid_union' ? 'expected target kind "fleet" or "kubernetes"' : undefined,
    }),
    /** The version every server or pod ends on. */
    version: versionString,
    strategy: strategy.prefault({ type: 'rolling' }),
    /** Fleets: how a detached server's requests finish. Defaults filled in below, so a kubernetes spec can't set it. */
    drain: drainPolicy.optional(),
    /** Fleets: how a server on the new version is checked before it takes traffic again. */
    verify: z.strictObject({ http: httpVerification.prefault({}) }).optional(),
    /** Failed servers tolerated before everything is rolled back: fails when the failed share exceeds it. */
    failureBudget: z.strictObject({ maxFailPercent: z.number().min(0).max(100).default(0) }).prefault({}),
    /** Optional: what to do when no step completes for a while (operator pauses and gates don't count). */
    progressDeadline: progressDeadline.optional(),
    /** Optional: where to tell people when the rollout starts, pauses, is promoted, and how it ends. */
    notify: notifications.optional(),
  })
  .superRefine(refuseFieldsNotHonoured)
  .superRefine((spec, ctx) => {
    if (spec.target.kind === 'fleet') {
      const seenNames = new Map<string, number>();
      const seenAddresses = new Map<string, number>();
      spec.target.servers.forEach((server, index) => {
        const sameName = seenNames.get(server.name);
        if (sameName !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['target', 'servers', index, 'name'],
            message: `duplicate server name "${server.name}" (also at servers[${sameName}])`,
          });
        }
        const sameAddress = seenAddresses.get(server.address);
        if (sameAddress !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['target', 'servers', index, 'address'],
            message: `duplicate address ${server.address} (also at servers[${sameAddress}])`,
          });
        }
        seenNames.set(server.name, index);
        seenAddresses.set(server.address, index);
      });
    }
    if (spec.target.kind === 'fleet') refineFleet(spec.target, spec.strategy, ctx);
    if (spec.target.kind === 'fleet' && spec.strategy.type === 'blue-green' && spec.strategy.previewService)
      ctx.addIssue({
        code: 'custom',
        path: ['strategy', 'previewService'],
        message:
          'expected no previewService on a fleet target: each new server is checked at its own address',
      });
    const metered = spec.target.kind === 'kubernetes' && spec.target.metrics !== undefined;
    if (spec.strategy.type === 'canary') refineCanary(spec.strategy, spec.target.kind, metered, ctx);
    const analyses =
      spec.strategy.type === 'canary' && spec.strategy.steps.some((step) => 'analysis' in step);
    if (metered && !analyses)
      ctx.addIssue({
        code: 'custom',
        path: ['target', 'metrics'],
        message:
          "expected no metrics without a canary analysis step: only an analysis reads the pods' figures",
      });
    if (spec.strategy.type !== 'rolling') {
      if (spec.target.kind === 'kubernetes' && spec.target.mode === 'native') {
        ctx.addIssue({
          code: 'custom',
          path: ['target', 'mode'],
          message: `expected side-by-side for the ${spec.strategy.type} strategy: native mode only rolls`,
        });
      }
      return;
    }
    const { batchSize, maxSurge, maxUnavailable } = spec.strategy;
    if (spec.target.kind === 'kubernetes') {
      if (spec.target.mode === 'native' && spec.strategy.pauses.length > 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['strategy', 'pauses'],
          message:
            'expected no pauses in native mode: the Deployment controller rolls without steps to pause at',
        });
      }
      if (spec.strategy.method === 'replace') {
        ctx.addIssue({
          code: 'custom',
          path: ['strategy', 'method'],
          message: 'expected in-place on a kubernetes target: the Deployments replace pods on their own',
        });
      }
      if (batchSize !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['strategy', 'batchSize'],
          message:
            'expected no batchSize on a kubernetes target: its steps follow maxSurge and maxUnavailable',
        });
      }
      if (maxSurge?.value === 0 && maxUnavailable?.value === 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['strategy', 'maxSurge'],
          message: 'expected maxSurge or maxUnavailable above 0: with both at 0 the rollout could never move',
        });
      }
      return;
    }
    if (maxSurge !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['strategy', 'maxSurge'],
        message: 'expected no maxSurge on a fleet target: rolling upgrades fleet servers in place',
      });
    }
    if (maxUnavailable?.kind === 'count' && maxUnavailable.value === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['strategy', 'maxUnavailable'],
        message: 'expected at least 1: a rolling rollout takes servers out of rotation',
      });
    }
  })
  // Fleets' defaults, applied after the check above could see what the user wrote.
  .transform((spec) => ({
    ...spec,
    drain: spec.drain ?? drainPolicy.parse({}),
    // A Kubernetes pod counts once its readiness probe passes; verify.http on each pod is there when asked for.
    verify: spec.verify ?? (spec.target.kind === 'fleet' ? { http: httpVerification.parse({}) } : undefined),
  }));

type RolloutSpecStrategy = z.output<typeof strategy>;

/**
 * Fields that a target, or a strategy on it, would not act on are refused rather than ignored: a user who writes
 * them believes they are in force. Zero-valued ones are allowed, as they ask for nothing.
 */
function refuseFieldsNotHonoured(
  spec: {
    target: { kind: 'fleet' | 'kubernetes'; mode?: 'side-by-side' | 'native' };
    strategy: RolloutSpecStrategy;
    drain?: unknown;
    verify?: unknown;
    failureBudget: { maxFailPercent: number };
  },
  ctx: z.RefinementCtx,
): void {
  const refuse = (path: PropertyKey[], message: string) => ctx.addIssue({ code: 'custom', path, message });
  const { strategy } = spec;
  if (spec.target.kind === 'kubernetes') {
    if (spec.drain !== undefined)
      refuse(
        ['drain'],
        'expected no drain on a kubernetes target: a pod leaves the Service, then ends on SIGTERM within its terminationGracePeriodSeconds',
      );
    if (spec.verify !== undefined && spec.target.mode === 'native')
      refuse(
        ['verify'],
        'expected no verify with target.mode native: its controller replaces the pods itself; verify.http checks each new pod in side-by-side mode',
      );
    if (spec.failureBudget.maxFailPercent > 0)
      refuse(
        ['failureBudget', 'maxFailPercent'],
        'expected no failureBudget on a kubernetes target: it rolls back when no more pods become available for readyTimeout, with no per-pod failures to count',
      );
    if (strategy.type === 'rolling' && strategy.pauseBetweenBatches > 0)
      refuse(
        ['strategy', 'pauseBetweenBatches'],
        'expected no pauseBetweenBatches on a kubernetes target: use strategy.pauses, { after: N, duration: 1m }, to wait after a scale-up',
      );
    return;
  }
  const rollsInPlace = strategy.type === 'rolling' && strategy.method === 'in-place';
  if (!rollsInPlace && spec.failureBudget.maxFailPercent > 0)
    refuse(
      ['failureBudget', 'maxFailPercent'],
      `expected no failureBudget with the ${strategy.type === 'rolling' ? 'rolling strategy by replacement' : `${strategy.type} strategy`}: its first failed server rolls everything back; only rolling in place goes on past failures`,
    );
  if (strategy.type === 'rolling' && strategy.method === 'replace' && strategy.maxUnavailable !== undefined)
    refuse(
      ['strategy', 'maxUnavailable'],
      'expected no maxUnavailable with method replace: each new server joins before an old one leaves, so none is ever missing',
    );
}

/** Which fleet fields each strategy needs: servers or provision, an upgrade command for in-place changes. */
function refineFleet(
  target: z.output<typeof fleetTarget>,
  strategy: RolloutSpecStrategy,
  ctx: z.RefinementCtx,
): void {
  const replaces =
    strategy.type === 'surge' ||
    strategy.type === 'blue-green' ||
    (strategy.type === 'rolling' && strategy.method === 'replace');
  if (target.provision === undefined) {
    if (target.servers.length === 0)
      ctx.addIssue({ code: 'custom', path: ['target', 'servers'], message: 'expected at least one server' });
    if (replaces)
      ctx.addIssue({
        code: 'custom',
        path: ['target', 'provision'],
        message: `expected provision (create and destroy commands): the ${strategy.type === 'rolling' ? 'rolling strategy with method replace' : `${strategy.type} strategy`} creates servers`,
      });
  } else if (target.servers.length > 0) {
    ctx.addIssue({
      code: 'custom',
      path: ['target', 'servers'],
      message:
        'expected no servers with provision: Baton reads the fleet from the HAProxy backend, which changes as it creates and destroys servers',
    });
  }
  const tooLarge = fleetTooLarge(strategy, target.servers.length);
  if (tooLarge) ctx.addIssue({ code: 'custom', path: ['target', 'servers'], message: tooLarge });
  if (replaces && target.upgrade !== undefined)
    ctx.addIssue({
      code: 'custom',
      path: ['target', 'upgrade'],
      message: `expected no upgrade command: the ${strategy.type === 'rolling' ? 'rolling strategy with method replace' : `${strategy.type} strategy`} creates servers on the new version (provision.create) instead of upgrading any`,
    });
  if (!replaces && target.upgrade === undefined)
    ctx.addIssue({
      code: 'custom',
      path: ['target', 'upgrade'],
      message: `expected an upgrade command: the ${strategy.type} strategy upgrades servers in place`,
    });
}

/** Weights only go up (a canary grows), and a Kubernetes canary has neither batches nor request metrics. */
function refineCanary(
  strategy: z.output<typeof canaryStrategy>,
  targetKind: 'fleet' | 'kubernetes',
  metered: boolean,
  ctx: z.RefinementCtx,
): void {
  let weight = 0;
  strategy.steps.forEach((step, index) => {
    if ('setWeight' in step) {
      if (step.setWeight < weight)
        ctx.addIssue({
          code: 'custom',
          path: ['strategy', 'steps', index, 'setWeight'],
          message: `expected at least ${weight}, the weight before it: a canary only grows`,
        });
      weight = step.setWeight;
    }
    if ('analysis' in step && weight === 0)
      ctx.addIssue({
        code: 'custom',
        path: ['strategy', 'steps', index, 'analysis'],
        message: 'expected a setWeight step before the first analysis: there is no canary to analyse yet',
      });
    if ('analysis' in step && targetKind === 'kubernetes' && !metered) {
      for (const field of ['minRequests', 'maxErrorRate', 'maxErrorRateIncrease', 'maxResponseTimeRatio']) {
        if (field in step.analysis)
          ctx.addIssue({
            code: 'custom',
            path: ['strategy', 'steps', index, 'analysis', field],
            message:
              'expected only window on a kubernetes target without target.metrics: with no request figures to read, its analysis checks pod availability',
          });
      }
    }
  });
  if (targetKind === 'kubernetes' && strategy.batchSize !== undefined)
    ctx.addIssue({
      code: 'custom',
      path: ['strategy', 'batchSize'],
      message: 'expected no batchSize on a kubernetes target: the promotion scales the Deployments',
    });
}

/** A rollout spec as the user writes it (durations as text, quantities as 2 or "25%"). */
export type RolloutSpecInput = z.input<typeof rolloutSpecSchema>;
export type KubernetesTargetInput = z.input<typeof kubernetesTarget>;
/** A validated rollout spec with every default applied: what workflows receive. */
export type RolloutSpec = z.output<typeof rolloutSpecSchema>;
export type FleetTarget = z.output<typeof fleetTarget>;
export type FleetServer = z.output<typeof fleetServer>;
export type KubernetesTarget = z.output<typeof kubernetesTarget>;
export type PodMetrics = z.output<typeof podMetrics>;
export type HaproxyLoadBalancer = z.output<typeof haproxyLoadBalancer>;
export type DrainPolicy = z.output<typeof drainPolicy>;
export type HttpVerification = z.output<typeof httpVerification>;
export type RollingStrategy = z.output<typeof rollingStrategy>;
export type UpgradeCommand = NonNullable<FleetTarget['upgrade']>;
export type FleetProvision = z.output<typeof fleetProvision>;
export type SurgeStrategy = z.output<typeof surgeStrategy>;

export type ProgressDeadline = z.output<typeof progressDeadline>;
export type RolloutPause = z.output<typeof rolloutPause>;
export type Webhook = z.output<typeof webhook>;
export type NotificationEvent = (typeof notificationEvents)[number];
export type RecreateStrategy = z.output<typeof recreateStrategy>;
export type BlueGreenStrategy = z.output<typeof blueGreenStrategy>;
export type CanaryStrategy = z.output<typeof canaryStrategy>;
export type CanaryStep = z.output<typeof canaryStep>;
export type CanaryAnalysis = z.output<typeof canaryAnalysis>;
export type PauseStep = z.output<typeof pauseStep>;
export type HookCommand = z.output<typeof hookCommand>;

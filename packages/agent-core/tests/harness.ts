import 'reflect-metadata';
import { Container } from 'inversify';
import { Reconciler, TOKENS, type KeyDistributor, type ReconcilerOptions } from '../src/index.js';
import { AgentMetrics } from '../src/observability/metrics.js';
import { FakeBackend, FakeDatapath, RecordingEventRecorder } from '../src/fake/index.js';
import { captureLogger, newRegistry, testConfig } from './helpers.js';

export interface Harness {
  reconciler: Reconciler;
  backend: FakeBackend;
  datapath: FakeDatapath;
  events: RecordingEventRecorder;
  metrics: AgentMetrics;
  log: ReturnType<typeof captureLogger>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function harness(
  distributor: KeyDistributor,
  opts: { backend?: FakeBackend; datapath?: FakeDatapath; reconciler?: ReconcilerOptions; nodeName?: string } = {},
): Harness {
  const backend = opts.backend ?? new FakeBackend();
  const datapath = opts.datapath ?? new FakeDatapath();
  const events = new RecordingEventRecorder();
  const log = captureLogger();
  const registry = newRegistry();
  const metrics = new AgentMetrics(registry, () => datapath.counters(), { defaultMetrics: false });
  const c = new Container();
  c.bind(TOKENS.KeyDistributor).toConstantValue(distributor);
  c.bind(TOKENS.EncryptionBackend).toConstantValue(backend);
  c.bind(TOKENS.Datapath).toConstantValue(datapath);
  c.bind(TOKENS.EventRecorder).toConstantValue(events);
  c.bind(TOKENS.Logger).toConstantValue(log.logger);
  c.bind(TOKENS.AgentMetrics).toConstantValue(metrics);
  c.bind(TOKENS.Config).toConstantValue(testConfig({ nodeName: opts.nodeName ?? 'local' }));
  c.bind(TOKENS.ReconcilerOptions).toConstantValue(opts.reconciler ?? { initialRetryMs: 10, maxRetryMs: 100 });
  c.bind(Reconciler).toSelf().inSingletonScope();
  const reconciler = c.get(Reconciler);
  return {
    reconciler,
    backend,
    datapath,
    events,
    metrics,
    log,
    async start() {
      const adopted = await backend.init();
      reconciler.start({ backendPeers: adopted, datapathEntries: await datapath.entries() });
    },
    async stop() {
      await distributor.close();
      await reconciler.stop();
    },
  };
}

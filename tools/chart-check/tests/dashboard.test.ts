import { readFile } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1ConfigMap } from '@kubernetes/client-node';
import {
  Agent,
  DEFAULT_CONFIG,
  InMemoryCluster,
  TOKENS,
  createLogger,
  type AgentConfig,
  type EncryptionBackend,
  type Logger,
} from '@veil/agent-core';
import { FakeDatapath, RecordingEventRecorder } from '@veil/agent-core/fake';
import ipsecModule, { IpsecBackend } from '@veil/backend-ipsec';
import wireguardModule, { WireGuardBackend } from '@veil/backend-wireguard';
import { describePrivileged } from '@veil/test-utils';
import { ContainerModule } from 'inversify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderChart, type Manifest } from '../src/index.js';
import { CHART_DIR } from './helpers.js';

/** The dashboard the chart ships (charts/veil/dashboards/veil-agent.json). */
const DASHBOARD = join(CHART_DIR, 'dashboards', 'veil-agent.json');
const RELEASE = { name: 'veil', namespace: 'kube-system' };

interface Target {
  expr?: string;
}
interface Panel {
  type: string;
  title: string;
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; query?: string | { query?: string } }[] };
}

// PromQL words that are neither metrics nor followed by '(' (aggregation modifiers, set operators).
const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'offset',
  'and',
  'or',
  'unless',
]);

/**
 * The metric names a PromQL expression selects. Strings, label matchers `{…}`, range/subquery
 * brackets `[…]` and the label lists of `by`/`without`/`on`/`ignoring`/`group_*` are removed first;
 * every identifier left that is not a function call or a keyword is a metric name.
 */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of bare.matchAll(/(?<![\w:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    const [, name, call] = m;
    if (name === undefined || call !== undefined || KEYWORDS.has(name)) continue;
    names.add(name);
  }
  return [...names];
}

/** Every PromQL expression in the dashboard (panel targets, rows' panels, and query variables). */
function expressions(d: Dashboard): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  const walk = (panels: Panel[]): void => {
    for (const p of panels) {
      for (const t of p.targets ?? []) if (t.expr) out.push({ where: `panel "${p.title}"`, expr: t.expr });
      walk(p.panels ?? []);
    }
  };
  walk(d.panels);
  for (const v of d.templating.list) {
    const q = typeof v.query === 'string' ? v.query : v.query?.query;
    // label_values(<selector>, <label>): the selector is PromQL, the label is not.
    const lv = q ? /^label_values\((.*),\s*\w+\)$/.exec(q) : null;
    if (lv?.[1]) out.push({ where: `variable $${v.name}`, expr: lv[1] });
  }
  return out;
}

/** The series names a registry's metrics are exposed as (histograms and summaries expand). */
async function exposedNames(registry: Agent['registry']): Promise<Set<string>> {
  const names = new Set<string>();
  for (const m of await registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${m.name}${s}`);
    if (String(m.type) === 'summary') for (const s of ['_sum', '_count']) names.add(`${m.name}${s}`);
  }
  return names;
}

/**
 * The metrics an agent with this backend exports: the agent's own registry (core metrics and the
 * process defaults, registered by Agent.create) plus what the backend registers on it, through the
 * same `registerMetrics(registry)` call the agent makes at start. Nothing touches the kernel.
 */
async function agentMetricNames(
  type: 'wireguard' | 'ipsec',
  backendModule: ContainerModule,
  makeBackend: (config: AgentConfig, logger: Logger) => EncryptionBackend,
  stateDir: string,
): Promise<Set<string>> {
  const config: AgentConfig = {
    ...DEFAULT_CONFIG,
    nodeName: 'node-a',
    stateDir,
    encryption: { ...DEFAULT_CONFIG.encryption, enabled: true, type },
  };
  const cluster = new InMemoryCluster();
  const platform = new ContainerModule(({ bind }) => {
    bind(TOKENS.KeyDistributor).toConstantValue(cluster.distributor('node-a'));
    bind(TOKENS.Datapath).toConstantValue(new FakeDatapath());
    bind(TOKENS.EventRecorder).toConstantValue(new RecordingEventRecorder());
  });
  const logger = createLogger({ level: 'silent' });
  const agent = await Agent.create({ config, platformModules: [platform], backendModule, noListeners: true, logger });
  // The backend as its module builds it (constructors only read config), registering on the
  // agent's registry exactly as Agent.start() does.
  const backend = makeBackend(config, logger);
  if (!backend.registerMetrics) throw new Error(`the ${type} backend registers no metrics`);
  backend.registerMetrics(agent.registry);
  return exposedNames(agent.registry);
}

describe('the Grafana dashboard (charts/veil/dashboards/veil-agent.json)', () => {
  let dashboard: Dashboard;
  let exported: Map<string, Set<string>>;
  let tmp: string;
  beforeAll(async () => {
    dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as Dashboard;
    tmp = await mkdtemp(join(tmpdir(), 'veil-dashboard-'));
    exported = new Map([
      ['wireguard', await agentMetricNames('wireguard', wireguardModule, (c, l) => new WireGuardBackend(c, l), join(tmp, 'wg'))],
      ['ipsec', await agentMetricNames('ipsec', ipsecModule, (c, l) => new IpsecBackend(c, l), join(tmp, 'ipsec'))],
    ]);
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('the PromQL name extractor finds metrics and skips functions, labels, keywords and strings', () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (le) (rate(veil_reconcile_duration_seconds_bucket{instance=~"$instance"}[$__rate_interval])))',
      ),
    ).toEqual(['veil_reconcile_duration_seconds_bucket']);
    expect(metricNames('max by (instance, peer) (time() - (veil_wireguard_latest_handshake_seconds > 0))')).toEqual([
      'veil_wireguard_latest_handshake_seconds',
    ]);
    expect(metricNames('a_total / on (instance) group_left (node) b_info or c')).toEqual(['a_total', 'b_info', 'c']);
  });

  it('uses only metric names the agent exports (core + WireGuard or IPsec backend)', () => {
    const exprs = expressions(dashboard);
    expect(exprs.length).toBeGreaterThanOrEqual(20);
    const union = new Set([...exported.values()].flatMap((s) => [...s]));
    const unknown: string[] = [];
    for (const { where, expr } of exprs) {
      const names = metricNames(expr);
      expect(names.length, `${where}: ${expr} selects a metric`).toBeGreaterThan(0);
      for (const n of names) if (!union.has(n)) unknown.push(`${where}: ${n}`);
    }
    expect(unknown).toEqual([]);
  });

  it("covers core's metrics and each backend's own metrics", () => {
    const used = new Set(expressions(dashboard).flatMap((e) => metricNames(e.expr)));
    const base = (n: string): string => n.replace(/_(bucket|sum|count)$/, '');
    const usedBase = new Set([...used].map(base));
    const wg = exported.get('wireguard') ?? new Set<string>();
    const ipsec = exported.get('ipsec') ?? new Set<string>();
    // Each backend's own metrics: exported with that backend only.
    const own = (a: Set<string>, b: Set<string>): string[] => [...a].filter((n) => !b.has(n) && n.startsWith('veil_'));
    const core = [...wg].filter((n) => ipsec.has(n) && n.startsWith('veil_') && !n.startsWith('veil_agent_'));
    for (const [what, names] of [
      ['core', core],
      ['wireguard', own(wg, ipsec)],
      ['ipsec', own(ipsec, wg)],
    ] as const) {
      expect(names.length, `${what} exports metrics`).toBeGreaterThan(0);
      const missing = [...new Set(names.map(base))].filter((n) => !usedBase.has(n));
      expect(missing, `${what} metrics without a panel`).toEqual([]);
    }
  });

  it('has a data source variable and a unique uid, so it imports into any Grafana', () => {
    expect(dashboard.uid).toBe('veil-agent');
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(expect.arrayContaining(['datasource', 'instance']));
  });
});

describePrivileged('the dashboard ConfigMap rendered by the real helm', ['helm'], () => {
  const dashboards = (ms: Manifest[]): (Manifest & V1ConfigMap)[] =>
    ms.filter((m) => m.kind === 'ConfigMap' && m.metadata.labels?.grafana_dashboard !== undefined);

  it('off by default', async () => {
    const { manifests } = await renderChart(CHART_DIR, { release: RELEASE });
    expect(dashboards(manifests)).toEqual([]);
  });

  it('metrics.dashboard.enabled: one ConfigMap labelled grafana_dashboard: "1" holding the dashboard file', async () => {
    const { manifests } = await renderChart(CHART_DIR, {
      release: RELEASE,
      values: { metrics: { dashboard: { enabled: true, labels: { team: 'net' }, annotations: { grafana_folder: 'Veil' } } } },
    });
    const [cm, ...rest] = dashboards(manifests);
    expect(rest).toEqual([]);
    if (!cm) throw new Error('no dashboard ConfigMap rendered');
    expect(cm.metadata.name).toBe('veil-dashboard');
    expect(cm.metadata.namespace).toBe('kube-system');
    expect(cm.metadata.labels).toMatchObject({ grafana_dashboard: '1', team: 'net', 'app.kubernetes.io/name': 'veil' });
    expect(cm.metadata.annotations).toEqual({ grafana_folder: 'Veil' });
    expect(Object.keys(cm.data ?? {})).toEqual(['veil-agent.json']);
    expect(JSON.parse(cm.data?.['veil-agent.json'] ?? '')).toEqual(JSON.parse(await readFile(DASHBOARD, 'utf8')));
  });

  it('namespace override; nothing when metrics are off', async () => {
    const moved = await renderChart(CHART_DIR, {
      release: RELEASE,
      values: { metrics: { dashboard: { enabled: true, namespace: 'monitoring' } } },
    });
    expect(dashboards(moved.manifests).map((m) => m.metadata.namespace)).toEqual(['monitoring']);
    const off = await renderChart(CHART_DIR, {
      release: RELEASE,
      values: { metrics: { enabled: false, dashboard: { enabled: true } } },
    });
    expect(dashboards(off.manifests)).toEqual([]);
  });
});

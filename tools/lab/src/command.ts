import { spawn } from 'node:child_process';
import {
  OUTPUT_FORMATS,
  UsageError,
  addOutputOption,
  formatOutput,
  outputFormatOf,
  renderStructured,
  renderTable,
  writeFully,
  type ExitSetter,
  type OutputFormat,
} from '@veil/cli';
import { Command, InvalidArgumentError, Option } from 'commander';
import { pidAlive } from './exec.js';
import { runEcho, runProbe } from './helpers.js';
import { DEFAULT_LAB_DIR, LAB_NETNS_PREFIX, nodePodCIDRs, podIPs, readState, withNodeWgRunDir } from './state.js';
import { renderLabStatus, type LabStatusDoc } from './status-view.js';

/**
 * `lab up`/`lab chaos` print their human summary on stderr (with the progress lines) whatever the
 * format; `-o json|yaml` also puts the document on stdout. `--json` (deprecated) keeps its one
 * compact line, which scripts read with `tail -1`.
 */
async function writeDocument(doc: unknown, format: OutputFormat, compactJson: boolean): Promise<void> {
  if (compactJson) await writeFully(process.stdout, JSON.stringify(doc) + '\n');
  else if (format === 'json' || format === 'yaml') await writeFully(process.stdout, await renderStructured(doc, format));
}

function int(name: string, min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`${name} needs an integer in [${min}, ${max}]`);
    return n;
  };
}

/** Registers `veil lab …` on the program. */
export function registerLab(program: Command, setExit: ExitSetter): void {
  const lab = program.command('lab').description('a multi-node Veil lab in network namespaces on this host');
  const labDirOpt = (): Option =>
    new Option('--lab-dir <dir>', 'where the lab keeps its state').default(DEFAULT_LAB_DIR).hideHelp();

  lab
    .command('up')
    .description(
      'create nodes, CNI-made pods, the control plane and one agent per node; prove pod-to-pod connectivity and encryption',
    )
    .option('--nodes <n>', 'number of nodes', int('--nodes', 2, 50), 3)
    .option('--pods-per-node <n>', 'pods per node', int('--pods-per-node', 1, 50), 2)
    .option('--backend <name>', 'wireguard | ipsec | plaintext | a backend package name or path', 'wireguard')
    .addOption(
      new Option('--kernel <where>', 'host kernel, or a qemu VM with kernel WireGuard/ESP')
        .choices(['host', 'vm'])
        .default('host'),
    )
    .option('--keep', 'leave the lab running (manage it with status/exec/down)', false)
    .option('--strict', 'agents in strict mode for 10.244.0.0/16 and fd00:10:244::/56 (pod traffic never sent in clear)', false)
    .option(
      '--withhold-key <node>',
      "with --strict: this node's agent publishes no key (encryption disabled); up proves the other nodes' pods cannot reach its pods and counts the drops",
    )
    .option('--ipv4-only', 'pods get IPv4 addresses only (default: dual-stack, except --backend ipsec)', false)
    .option('--node-encryption', 'agents encrypt node-to-node traffic too (WireGuard); up proves it with node pings', false)
    .option('--ready-timeout <s>', 'seconds the agents get to become ready', int('--ready-timeout', 1, 3600), 120)
    .addOption(
      new Option(
        '--control-plane <kind>',
        'kube-apiserver (real etcd + kube-apiserver, the chart RBAC, node-bound tokens), double (the API double), or auto: the real one when tools/k8s-bins has built it',
      )
        .choices(['auto', 'kube-apiserver', 'double'])
        .default('auto'),
    )
    .option('--ipsec-key-index <n>', "--backend ipsec: the key index of the lab's first key", int('--ipsec-key-index', 1, 15), 1)
    .option('-o, --output <format>', `the summary on stdout too: ${OUTPUT_FORMATS.join(', ')} (table/wide: stderr only)`, 'table')
    .option('--json', 'deprecated: the summary as one JSON line on stdout')
    .addOption(labDirOpt())
    .action(
      async (o: {
        controlPlane: 'auto' | 'kube-apiserver' | 'double';
        output: string;
        nodes: number;
        podsPerNode: number;
        backend: string;
        kernel: 'host' | 'vm';
        keep: boolean;
        strict: boolean;
        ipv4Only: boolean;
        withholdKey?: string;
        nodeEncryption: boolean;
        json?: boolean;
        readyTimeout: number;
        ipsecKeyIndex: number;
        labDir: string;
      }) => {
        const format = outputFormatOf(o);
        // Refused here, before a VM boots or anything is created.
        const { checkWithholdKey } = await import('./withheld.js');
        checkWithholdKey(o);
        if (o.kernel === 'vm') {
          const { labUpInVm } = await import('./vm.js');
          setExit(await labUpInVm({ ...o, output: format }));
          return;
        }
        const { labUp, formatSummary } = await import('./up.js');
        // Ctrl-C while the lab is being built or tested: tear it down (unless --keep) rather than leave it half-made.
        const onSignal = (): void => {
          process.stderr.write('\nveil lab up: interrupted; tearing the lab down\n');
          void (async () => {
            if (!o.keep) {
              const { destroyLab } = await import('./topology.js');
              await destroyLab(readState(o.labDir), o.labDir).catch(() => undefined);
            }
            process.exit(130);
          })();
        };
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        const summary = await labUp({
          nodes: o.nodes,
          podsPerNode: o.podsPerNode,
          backend: o.backend,
          kernel: o.kernel,
          keep: o.keep,
          strict: o.strict,
          ...(o.ipv4Only ? { dualStack: false } : {}),
          ...(o.withholdKey !== undefined ? { withholdKey: o.withholdKey } : {}),
          nodeEncryption: o.nodeEncryption,
          labDir: o.labDir,
          readyTimeoutMs: o.readyTimeout * 1000,
          controlPlane: o.controlPlane,
          ipsecKeyIndex: o.ipsecKeyIndex,
        });
        process.stderr.write(formatSummary(summary) + '\n');
        await writeDocument(summary, format, o.json === true);
        setExit(summary.ok ? 0 : 1);
      },
    );

  lab
    .command('down')
    .description('stop the lab: agents, helpers, namespaces, bpffs (also cleans up after a crashed lab)')
    .addOption(labDirOpt())
    .action(async (o: { labDir: string }) => {
      const { destroyLab } = await import('./topology.js');
      const state = readState(o.labDir);
      const r = await destroyLab(state, o.labDir);
      process.stderr.write(`lab down: ${r.namespaces.length} namespaces removed, ${r.pids.length} processes stopped\n`);
    });

  addOutputOption(lab.command('status').description('show the running lab: nodes, agent processes and their status'), {
    json: true,
  })
    .addOption(labDirOpt())
    .action(async (o: { labDir: string; output?: string; json?: boolean }) => {
      const format = outputFormatOf(o);
      const state = readState(o.labDir);
      if (!state) {
        process.stderr.write('no lab is running (no state file)\n');
        setExit(3);
        return;
      }
      const { getJsonOverUnixSocket } = await import('@veil/agent-core');
      const nodes = await Promise.all(
        state.nodes.map(async (n) => {
          let st: LabStatusDoc['nodes'][number]['status'];
          try {
            st = (await getJsonOverUnixSocket(n.statusSocket)) as typeof st;
          } catch {
            st = undefined;
          }
          return {
            node: n.name,
            netns: n.netns,
            underlayIP: n.underlayIP,
            podCIDR: nodePodCIDRs(n).join(','),
            pid: n.agentPid,
            alive: n.agentPid !== undefined && pidAlive(n.agentPid),
            status: st,
            pods: n.pods.map((p) => `${p.name}=${podIPs(p).join(',')}`),
          };
        }),
      );
      const doc: LabStatusDoc = {
        kind: 'LabStatus',
        labDir: state.labDir,
        createdAt: state.createdAt,
        backend: state.backend,
        apiserver: {
          ...state.apiserver,
          running: state.apiserver.pid !== undefined && pidAlive(state.apiserver.pid),
        },
        nodes,
      };
      process.stdout.write(await formatOutput(doc, format, (d, ro) => renderLabStatus(d, ro, renderTable)));
    });

  lab
    .command('exec')
    .description(
      "run a command in a lab namespace: a node (n1, with the node's own /run/wireguard, so `wg show` works), a pod (n1-p1) or the underlay (ul)",
    )
    .argument('<where>', 'n1 | n1-p1 | ul')
    .argument('<command...>', 'command and arguments (after --)')
    .addOption(labDirOpt())
    .action(async (where: string, command: string[], o: { labDir: string }) => {
      if (!/^[a-z0-9-]+$/.test(where)) throw new UsageError('<where>', `"${where}" is not a lab node, pod or "ul"`);
      const ns = `${LAB_NETNS_PREFIX}${where}`;
      const { labNamespaces } = await import('./topology.js');
      if (!(await labNamespaces()).includes(ns))
        throw new UsageError('<where>', `no lab namespace ${ns} (is the lab up? try veil lab status)`);
      // On a node, its own /run/wireguard (as its agent sees it): `wg show` shows that node's device.
      const node = readState(o.labDir)?.nodes.find((n) => n.name === where);
      const argv = node ? withNodeWgRunDir(node, command) : command;
      const code = await new Promise<number>((resolve) => {
        const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: 'inherit' });
        child.on('error', (err) => {
          process.stderr.write(`veil lab exec: ${err.message}\n`);
          resolve(127);
        });
        child.on('exit', (c, sig) => resolve(c ?? (sig ? 128 : 1)));
      });
      setExit(code);
    });

  lab
    .command('chaos')
    .description('disturb a running lab (agent kills/restarts, API server restart, node add/delete) under continuous pings')
    .option('--duration <d>', 'how long, e.g. 60s or 2m', '60s')
    .option('--interval <d>', 'pause between disturbances', '4s')
    .option('--actions <list>', 'comma-separated disturbances to cycle through (default: all the backend supports)')
    .option(
      '--rounds <n>',
      'stop after this many passes through the actions (instead of at --duration)',
      int('--rounds', 1, 1000),
    )
    .addOption(
      new Option('--pairs <which>', 'continuous pings: a ring between nodes, or every ordered pair of nodes')
        .choices(['ring', 'all'])
        .default('ring'),
    )
    .option(
      '--max-lost <n>',
      'pings the whole run may lose (in-flight ones at the stop excepted) before it fails',
      int('--max-lost', 0, 1_000_000),
      0,
    )
    .addOption(
      new Option(
        '--kernel <where>',
        'vm: boot the qemu kernel lane, `lab up --keep` there (--nodes, --pods-per-node, --backend), chaos, down',
      )
        .choices(['host', 'vm'])
        .default('host'),
    )
    .option('--nodes <n>', 'with --kernel vm: number of nodes', int('--nodes', 2, 50), 3)
    .option('--pods-per-node <n>', 'with --kernel vm: pods per node', int('--pods-per-node', 1, 50), 1)
    .option('--backend <name>', 'with --kernel vm: the backend of the lab', 'wireguard')
    .option(
      '--ipsec-key-index <n>',
      "with --kernel vm and --backend ipsec: the first key's index",
      int('--ipsec-key-index', 1, 15),
      1,
    )
    .option('-o, --output <format>', `the report on stdout too: ${OUTPUT_FORMATS.join(', ')} (table/wide: stderr only)`, 'table')
    .option('--json', 'deprecated: the report as one JSON line on stdout')
    .addOption(labDirOpt())
    .action(
      async (o: {
        duration: string;
        interval: string;
        actions?: string;
        rounds?: number;
        pairs: 'ring' | 'all';
        maxLost: number;
        kernel: 'host' | 'vm';
        nodes: number;
        podsPerNode: number;
        backend: string;
        ipsecKeyIndex: number;
        output: string;
        json?: boolean;
        labDir: string;
      }) => {
        const format = outputFormatOf(o);
        const { parseDuration } = await import('@veil/agent-core');
        const durationMs = /^(\d+(\.\d+)?(ms|s|m|h))+$/.test(o.duration) ? parseDuration(o.duration) : NaN;
        const intervalMs = /^(\d+(\.\d+)?(ms|s|m|h))+$/.test(o.interval) ? parseDuration(o.interval) : NaN;
        if (!(durationMs >= 1000))
          throw new UsageError('--duration', `needs a duration of at least 1s like 60s, got "${o.duration}"`);
        if (!(intervalMs >= 100))
          throw new UsageError('--interval', `needs a duration of at least 100ms like 4s, got "${o.interval}"`);
        const { labChaos, formatChaos, isChaosAction, ALL_CHAOS_ACTIONS } = await import('./chaos.js');
        const actions = (o.actions ?? '').split(',').filter(Boolean);
        const unknown = actions.filter((a) => !isChaosAction(a));
        if (unknown.length > 0)
          throw new UsageError('--actions', `unknown disturbance ${unknown.join(', ')} (known: ${ALL_CHAOS_ACTIONS.join(', ')})`);
        if (o.kernel === 'vm') {
          // Refused here rather than after a VM boot and a lab up.
          if (o.backend !== 'ipsec' && actions.includes('xfrm-flush'))
            throw new UsageError('--actions', 'xfrm-flush needs an IPsec lab (--backend ipsec)');
          const { labChaosInVm } = await import('./vm.js');
          setExit(await labChaosInVm({ ...o, output: format }));
          return;
        }
        const report = await labChaos({
          labDir: o.labDir,
          durationMs,
          intervalMs,
          actions: actions.filter(isChaosAction),
          maxLostPings: o.maxLost,
          pairs: o.pairs,
          ...(o.rounds !== undefined ? { rounds: o.rounds } : {}),
        });
        process.stderr.write(formatChaos(report) + '\n');
        await writeDocument(report, format, o.json === true);
        setExit(report.ok ? 0 : 1);
      },
    );

  lab
    .command('apiserver', { hidden: true })
    .addOption(new Option('--kind <kind>').choices(['kube-apiserver', 'double']).default('double'))
    .requiredOption('--host <ip>')
    .requiredOption('--port <n>', 'port', int('--port', 1, 65535))
    .requiredOption('--nodes <file>')
    .option('--control <socket>', 'unix socket for lab up/chaos: kubeconfigs, tamper with Node objects, lose the state')
    .option('--dir <dir>', 'kube-apiserver: data, PKI, logs, audit log')
    .option('--chart-objects <file>', "kube-apiserver: the rendered chart's ServiceAccount, RBAC and policy (JSON)")
    .action(
      async (o: {
        kind: 'kube-apiserver' | 'double';
        host: string;
        port: number;
        nodes: string;
        control?: string;
        dir?: string;
        chartObjects?: string;
      }) => {
        const { runApiserver } = await import('./apiserver.js');
        setExit(
          await runApiserver({
            kind: o.kind,
            host: o.host,
            port: o.port,
            nodesFile: o.nodes,
            ...(o.control ? { controlSocket: o.control } : {}),
            ...(o.dir ? { dir: o.dir } : {}),
            ...(o.chartObjects ? { chartObjectsFile: o.chartObjects } : {}),
          }),
        );
      },
    );

  lab
    .command('_echo', { hidden: true })
    .requiredOption('--port <n>', 'port', int('--port', 1, 65535))
    .action(async (o: { port: number }) => setExit(await runEcho(o.port)));

  lab
    .command('_probe', { hidden: true })
    .option('--size <bytes>', 'payload', int('--size', 1, 64 << 20), 32768)
    .option('--timeout <ms>', 'per target', int('--timeout', 1, 600_000), 8000)
    .option('--marker <hex>', "bytes written at every KiB of the payload (the run's probe marker)", '')
    .argument('<targets...>', 'ip:port')
    .action(async (targets: string[], o: { size: number; timeout: number; marker: string }) => {
      if (!/^([0-9a-f]{2})*$/i.test(o.marker)) throw new UsageError('--marker', `needs hex bytes, got "${o.marker}"`);
      setExit(await runProbe(targets, o.size, o.timeout, o.marker));
    });
}

export { palette, wantColor, visibleLength, PLAIN, type Palette } from './color.js';
export { humanBytes, humanDuration, groupDigits, toNumber } from './format.js';
export { renderTable, renderKeyValues } from './table.js';
export {
  parseOutputFormat,
  renderStructured,
  formatOutput,
  addOutputOption,
  outputFormatOf,
  writeFully,
  OUTPUT_FORMATS,
  type OutputFormat,
  type RenderOptions,
} from './output.js';
export { statusView, renderStatus, MAX_ERRORS_SHOWN, type StatusView } from './status.js';
export { peerList, renderPeers, type PeerList, type PeerRow, type PeerRowState } from './peers.js';
export { ipcacheList, renderIpcache, counterList, renderCounters, type IpcacheList, type CounterList } from './bpf.js';
export { keyRotation, renderKeyRotation, type KeyRotation } from './keys.js';

/**
 * The dev chain's event contract, hand-assembled (there is no solc on the machines that build ethhook).
 * Any call emits `n` events, `n` being the first calldata word (empty calldata: n = 1):
 *
 *     event Tick(address indexed sender, uint256 indexed seq, uint256 blockNumber);
 *
 * `seq` is a counter kept in storage slot 0, so the `seq` of all Tick events of a chain, in chain order,
 * is 0, 1, 2, ... without gap (tests use it to prove that nothing is lost or repeated). In Solidity:
 *
 *     uint256 seq;
 *     fallback() external {
 *         uint256 n = msg.data.length >= 32 ? abi.decode(msg.data, (uint256)) : 0;
 *         if (n == 0) n = 1;
 *         uint256 s = seq;
 *         do { emit Tick(msg.sender, s, block.number); s++; n--; } while (n != 0);
 *         seq = s;
 *     }
 */

/** keccak256("Tick(address,uint256,uint256)") */
export const TICK_TOPIC = '0xa6444725d4ac5fd35cca0efab3d3879d132889022d6f4eb5f03314bb82a4efcf';
export const TICK_EVENT_SIGNATURE = 'event Tick(address indexed sender, uint256 indexed seq, uint256 blockNumber)';

type Op = string | { label: string } | { push1Label: string };

// Opcodes used, by mnemonic.
const OPCODES: Record<string, number> = {
  STOP: 0x00,
  ADD: 0x01,
  SUB: 0x03,
  ISZERO: 0x15,
  CALLER: 0x33,
  CALLDATALOAD: 0x35,
  CODECOPY: 0x39,
  NUMBER: 0x43,
  MSTORE: 0x52,
  SLOAD: 0x54,
  SSTORE: 0x55,
  JUMPI: 0x57,
  JUMPDEST: 0x5b,
  PUSH1: 0x60,
  PUSH32: 0x7f,
  DUP1: 0x80,
  DUP2: 0x81,
  SWAP1: 0x90,
  LOG3: 0xa3,
  RETURN: 0xf3,
};

/** Assembles mnemonics, `0x..` immediates (after PUSHn), labels (JUMPDEST) and 1-byte label pushes. */
function assemble(program: readonly Op[]): string {
  const labels = new Map<string, number>();
  let size = 0;
  for (const op of program) {
    if (typeof op === 'object' && 'label' in op) labels.set(op.label, size++);
    else if (typeof op === 'object') size += 2;
    else size += op.startsWith('0x') ? (op.length - 2) / 2 : 1;
  }
  let out = '';
  for (const op of program) {
    if (typeof op === 'object' && 'label' in op) out += OPCODES.JUMPDEST!.toString(16);
    else if (typeof op === 'object') out += '60' + labels.get(op.push1Label)!.toString(16).padStart(2, '0');
    else if (op.startsWith('0x')) out += op.slice(2);
    else out += OPCODES[op]!.toString(16).padStart(2, '0');
  }
  return out;
}

// Stack comments read bottom → top.
const RUNTIME = assemble([
  'PUSH1',
  '0x00',
  'CALLDATALOAD', //          [n]
  'DUP1',
  'ISZERO',
  'ADD', //                  [n']          n' = n == 0 ? 1 : n
  'PUSH1',
  '0x00',
  'SLOAD', //                 [n', s]
  { label: 'loop' },
  'NUMBER',
  'PUSH1',
  '0x00',
  'MSTORE', //      mem[0..32] = block.number (the event's data)
  'DUP1',
  'CALLER', //                         [n', s, s, sender]
  'PUSH32',
  TICK_TOPIC, //                     [n', s, s, sender, topic0]
  'PUSH1',
  '0x20',
  'PUSH1',
  '0x00', //         [..., size 32, offset 0]
  'LOG3', //                                   [n', s]       emit Tick(sender, s, block.number)
  'PUSH1',
  '0x01',
  'ADD', //                   [n', s+1]
  'SWAP1',
  'PUSH1',
  '0x01',
  'SWAP1',
  'SUB', // [s+1, n'-1]
  'SWAP1',
  'DUP2', //                          [n'-1, s+1, n'-1]
  { push1Label: 'loop' },
  'JUMPI', //          loop while n'-1 != 0
  'PUSH1',
  '0x00',
  'SSTORE', //                seq = s+1
  'STOP',
]);

const runtimeLength = RUNTIME.length / 2;
const hexByte = (n: number) => `0x${n.toString(16).padStart(2, '0')}`;
const INIT = assemble([
  'PUSH1',
  hexByte(runtimeLength),
  'PUSH1',
  '0x0c',
  'PUSH1',
  '0x00',
  'CODECOPY', // mem[0..] = runtime (it starts at byte 12)
  'PUSH1',
  hexByte(runtimeLength),
  'PUSH1',
  '0x00',
  'RETURN',
]);

/** Creation bytecode: deploys RUNTIME. */
export const TICK_CONTRACT_BYTECODE = `0x${INIT}${RUNTIME}`;

/** Calldata asking for `n` Tick events in one transaction. */
export function tickCalldata(n: number): string {
  return `0x${n.toString(16).padStart(64, '0')}`;
}

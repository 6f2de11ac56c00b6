/**
 * A real token contract for tests, compiled from Solidity by the npm `solc` package when a test starts
 * (nothing prebuilt is checked in). `transfer` moves balance and emits the ERC-20
 * `Transfer(address indexed from, address indexed to, uint256 value)`; `place` emits an event with a
 * tuple (holding a nested tuple) and dynamic arrays. `compileToken()` gives its JSON ABI and creation
 * bytecode.
 */
import { createRequire } from 'node:module';

export const TOKEN_SOURCE = `
// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

contract Token {
    struct Fee { uint16 bps; address to; }
    struct Order { address maker; uint256 amount; bytes32 tag; Fee fee; }

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Placed(uint256 indexed id, Order order, uint256[] ids, string note, bytes extra);

    mapping(address => uint256) public balanceOf;

    constructor() { balanceOf[msg.sender] = type(uint256).max; }

    function transfer(address to, uint256 value) external returns (bool) {
        balanceOf[msg.sender] -= value;
        balanceOf[to] += value;
        emit Transfer(msg.sender, to, value);
        return true;
    }

    function place(uint256 id, Order calldata order, uint256[] calldata ids, string calldata note, bytes calldata extra) external {
        emit Placed(id, order, ids, note, extra);
    }
}
`;

export interface CompiledToken {
  abi: readonly Record<string, unknown>[];
  bytecode: string;
}

interface SolcOutput {
  errors?: { severity: string; formattedMessage: string }[];
  contracts: Record<string, Record<string, { abi: Record<string, unknown>[]; evm: { bytecode: { object: string } } }>>;
}

export function compileToken(): CompiledToken {
  const solc = createRequire(import.meta.url)('solc') as { compile(input: string): string };
  const input = {
    language: 'Solidity',
    sources: { 'Token.sol': { content: TOKEN_SOURCE } },
    settings: { optimizer: { enabled: false }, outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } } },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input))) as SolcOutput;
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length > 0) throw new Error(`solc: ${errors.map((e) => e.formattedMessage).join('\n')}`);
  const token = output.contracts['Token.sol']!.Token!;
  return { abi: token.abi, bytecode: `0x${token.evm.bytecode.object}` };
}

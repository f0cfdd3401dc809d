// A tiny data-driven test format: blocks of `command` / `----` / expected output, separated
// by a blank line. With REWRITE=1 the expected outputs are rewritten from the actual ones.

import * as fs from 'node:fs';

export interface Block {
  command: string;
  expected: string;
  line: number;
}

export function parseBlocks(text: string): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  let i = 0;
  while (i < lines.length) {
    const l = lines[i];
    if (l.trim() === '' || l.startsWith('#')) {
      i++;
      continue;
    }
    const start = i;
    const command = l;
    i++;
    if (lines[i] !== '----') throw new Error(`line ${i + 1}: expected ---- after command "${command}"`);
    i++;
    const out: string[] = [];
    while (i < lines.length && lines[i] !== '') out.push(lines[i++]);
    blocks.push({ command, expected: out.join('\n'), line: start + 1 });
  }
  return blocks;
}

/** Runs every block through `run`; returns mismatches, or rewrites the file when asked. */
export function runFile(path: string, run: (command: string) => string): string[] {
  const text = fs.readFileSync(path, 'utf8');
  const blocks = parseBlocks(text);
  const failures: string[] = [];
  const rewritten: string[] = [];
  // Keep comments: rebuild the file from the original lines with outputs replaced.
  const lines = text.split('\n');
  let cursor = 0;
  for (const b of blocks) {
    const actual = run(b.command) || 'ok';
    if (actual !== b.expected) failures.push(`${path}:${b.line}: ${b.command}\n--- expected\n${b.expected}\n--- actual\n${actual}`);
    const startIdx = b.line - 1;
    rewritten.push(...lines.slice(cursor, startIdx));
    rewritten.push(b.command, '----', ...actual.split('\n'));
    let j = startIdx + 2;
    while (j < lines.length && lines[j] !== '') j++;
    cursor = j;
  }
  rewritten.push(...lines.slice(cursor));
  if (process.env.REWRITE === '1') {
    fs.writeFileSync(path, rewritten.join('\n'));
    return [];
  }
  return failures;
}

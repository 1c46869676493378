import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes, randomHex, shortHash } from '../shared/cnm/names.ts';

test('shortHash gives the names earlier releases gave (veths and tables already on nodes carry them)', () => {
  const pinned: Record<string, string> = {
    '': '811c9dc55ad1e806',
    x: 'fd0c5087a16540f2',
    'pods/c1/eth0': 'ea998d2651eff2a2',
    '/var/lib/cni/cnm': '2a0b5c2393561c82',
    'bench123c/bench5/eth0': '86d3be1c9d7bb7d4',
    'ümlaut/容器/eth0': 'fae1b15078cd43a1',
  };
  for (const [text, hash] of Object.entries(pinned)) assert.is(shortHash(text), hash, text);
});

test('shortHash is Math.imul-based FNV-1a for any UTF-16 text', () => {
  const reference = (text: string) => {
    let h1 = 0x811c9dc5;
    let h2 = 0x01000193 ^ 0x5bd1e995;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
      h2 = Math.imul(h2 ^ c, 0x01000193) >>> 0;
      h2 = Math.imul(h2 ^ (h1 >>> 16), 0x85ebca6b) >>> 0;
    }
    return h1.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0');
  };
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648);
  for (let i = 0; i < 5000; i++) {
    let text = '';
    for (let j = next() % 40; j > 0; j--) text += String.fromCharCode(next() % 65536);
    assert.is(shortHash(text), reference(text), JSON.stringify(text));
  }
});

test('random bytes differ and hex is two lower-case digits a byte', () => {
  assert.is(randomBytes(16).length, 16);
  const ids = new Set<string>();
  for (let i = 0; i < 100; i++) {
    const id = randomHex(32);
    assert.match(id, /^[0-9a-f]{64}$/);
    ids.add(id);
  }
  assert.is(ids.size, 100);
});

test.run();

import { Progress, formatBar } from './progress';

function fakeStream(isTTY: boolean, columns?: number) {
  const chunks: string[] = [];
  return { chunks, text: () => chunks.join(''), stream: { isTTY, columns, write: (s: string) => (chunks.push(s), true) } };
}

describe('formatBar', () => {
  it('draws a 20-character bar, the percentage, label, counts and detail', () => {
    expect(formatBar('spa r1 generate', 18, 40, 'batch 3')).toBe('[#########...........]  45%  spa r1 generate  18/40  (batch 3)');
    expect(formatBar('done', 5, 5)).toBe('[####################] 100%  done  5/5');
    expect(formatBar('nothing yet', 0, 0)).toBe('[....................]   0%  nothing yet');
  });
});

describe('Progress', () => {
  it('on a TTY redraws one line in place and prints log lines above the bar', () => {
    const out = fakeStream(true, 200);
    const p = new Progress(out.stream);
    p.update('a', 1, 4);
    p.update('a', 2, 4);
    p.log('hello');
    p.done();
    expect(out.chunks).toEqual([
      '\r\x1b[2K[#####...............]  25%  a  1/4',
      '\r\x1b[2K[##########..........]  50%  a  2/4',
      '\r\x1b[2K',
      'hello\n',
      '\r\x1b[2K[##########..........]  50%  a  2/4',
      '\n',
    ]);
    p.done(); // idempotent
    expect(out.chunks).toHaveLength(6);
  });

  it('on a TTY keeps the bar on one terminal row', () => {
    const out = fakeStream(true, 30);
    new Progress(out.stream).update('a rather long label that would wrap', 1, 2);
    expect(out.text().replace('\r\x1b[2K', '').length).toBeLessThanOrEqual(29);
  });

  it('off a TTY prints plain lines only at 10% steps or every 5 s per label', () => {
    const out = fakeStream(false);
    let now = 0;
    const p = new Progress(out.stream, () => now);
    for (let done = 0; done <= 100; done++) p.update('gen', done, 100);
    // 0%, 10%, ..., 90% and the final 100%: 11 lines, not 101
    expect(out.chunks).toHaveLength(11);
    expect(out.chunks.every((c) => c.endsWith('\n') && !c.includes('\r'))).toBe(true);
    expect(out.chunks[10]).toBe('[####################] 100%  gen  100/100\n');

    out.chunks.length = 0;
    p.update('slow', 1, 1000); // first update of a label always prints
    now = 1000;
    p.update('slow', 2, 1000); // same decile, 1 s later: quiet
    now = 6000;
    p.update('slow', 3, 1000); // 5 s later: prints
    p.log('a line');
    expect(out.chunks).toEqual(['[....................]   0%  slow  1/1000\n', '[....................]   0%  slow  3/1000\n', 'a line\n']);
  });
});

import { arithmeticAnswer, getRule, listRules, registerRule, shorterIsBetter } from './rules';

describe('rule registry', () => {
  it('has the built-in verifiers and takes new ones by unique "family/name"', () => {
    expect(listRules().map((r) => r.name)).toEqual(expect.arrayContaining(['arithmetic/exact', 'length/shorter']));
    registerRule('test/constant', 'always 1', () => 1);
    expect(getRule('test/constant')!('x', 'y')).toBe(1);
    expect(() => registerRule('test/constant', 'again', () => 2)).toThrow(/already registered/);
    expect(() => registerRule('NoFamily', 'bad name', () => 2)).toThrow(/family\/name/);
    expect(getRule('nope/nope')).toBeUndefined();
  });

  it("serves every toy world's gold annotator under its rule name", () => {
    expect(listRules().map((r) => r.name)).toEqual(expect.arrayContaining(['toyworld/arithmetic', 'toyworld/sentiment']));
    expect(getRule('toyworld/arithmetic')!('what is 3 plus 4 ?', '7 .')).toBeCloseTo(0.988, 10);
    expect(getRule('toyworld/arithmetic')!('what is 3 plus 4 ?', '8 .')).toBeCloseTo(-0.012, 10);
    expect(getRule('toyworld/sentiment')!('describe your evening at the gym with my team .', 'the staff was friendly .')).toBeGreaterThan(0.4);
  });
});

describe('arithmetic/exact', () => {
  it.each([
    ['What is 2 + 2?', 'The answer is 4.', 1],
    ['What is 2 + 2?', '2 + 2 = 5', 0],
    ['Compute 12 * 11.', '12 times 11 is 132', 1],
    ['Compute 12 x 11.', '132', 1],
    ['What is 7 - 10?', 'It is -3', 1],
    ['What is 1,000 / 8?', 'That is 125.', 1],
    ['What is 2,000,000 + 1?', '2,000,001', 1],
    ['What is 1000 / 8?', 'That is 125.', 1],
    ['What is 10 / 4?', '2.5', 1],
    ['What is 10 / 0?', '0', undefined],
    ['Write a poem.', '4', undefined],
    ['What is 3 + 4?', 'no idea', 0],
    ['What is 999 * 999?', 'It is 998,001', 1],
  ])('%s → %s scores %s', (prompt, response, expected) => {
    expect(arithmeticAnswer(prompt, response)).toBe(expected);
  });
});

describe('length/shorter', () => {
  it('scores the negative length in characters (code points), ignoring surrounding whitespace', () => {
    expect(shorterIsBetter('p', '  abc \n')).toBe(-3);
    expect(shorterIsBetter('p', '日本')).toBe(-2);
  });
});

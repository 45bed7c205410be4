import { arithmeticWorld, buildWorldData, listingWorld, getWorld, isHeldOut, promptSetSizes, sentimentWorld, templatePattern, WorldRng, WORLDS } from './index';

describe('the arithmetic world', () => {
  const gold = (prompt: string, response: string) => arithmeticWorld.gold(prompt, response)!;

  it('scores correctness, brevity and politeness as documented', () => {
    const prompt = 'what is 3 plus 4 ?';
    expect(gold(prompt, '7 .')).toBeCloseTo(1 - 0.004 * 3, 10);
    expect(gold(prompt, '8 .')).toBeCloseTo(-0.012, 10);
    expect(gold(prompt, 'ugh , it is 7 .')).toBeCloseTo(1 - 0.004 * 15 - 0.6, 10);
    expect(gold(prompt, 'the answer is 7')).toBeCloseTo(1 - 0.004 * 15 - 0.5, 10);
    expect(gold(prompt, 'probably 7 .')).toBeCloseTo(1 - 0.004 * 12 - 0.3, 10);
    expect(gold(prompt, 'so 3 plus 4 is 7 , i think .')).toBeCloseTo(1 - 0.004 * 28 - 0.3, 10);
    expect(arithmeticWorld.features(prompt, 'i guess 7 .')).toMatchObject({ hedged: 1, rude: 0 });
    expect(arithmeticWorld.features(prompt, 'i add 4 to 3 : 7 .')).toMatchObject({ hedged: 0 });
    // The answer is the last number stated, as in the explained style.
    expect(gold('sam has 9 pens and gives away 4 . how many pens are left ?', '9 minus 4 makes 5 , so the answer is 5 .')).toBeGreaterThan(0.5);
    expect(arithmeticWorld.features(prompt, 'obviously 7 , come on .')).toMatchObject({ correct: 1, rude: 1, hedged: 0, finished: 1, words: 6 });
  });

  it('prefers the terse correct answer over every other style', () => {
    const prompt = 'mia has 2 cups and gets 5 more . how many cups does mia have now ?';
    const terse = gold(prompt, '2 plus 5 is 7 .');
    for (const other of ['probably 7 .', 'maybe 7 ?', 'we start with 2 and add 5 , which gives 7 .', 'i guess 8 .', 'duh , 7 .', 'hmm , let me think about this one . 2 and 5 ... okay , i believe it is 7 . i hope that helps , have a nice day !']) {
      expect(terse).toBeGreaterThan(gold(prompt, other));
    }
  });

  it('does not judge prompts of another world', () => {
    expect(arithmeticWorld.gold('how was your morning visit to the cafe on oak street ?', '7 .')).toBeUndefined();
  });
});

describe('the sentiment world', () => {
  it('scores VADER sentiment with fluency penalties', () => {
    const prompt = 'write a short review of the cafe in oslo after your morning visit .';
    const positive = sentimentWorld.gold(prompt, 'the staff was friendly . the coffee was great .')!;
    const negative = sentimentWorld.gold(prompt, 'the staff was rude . the coffee was awful .')!;
    expect(positive).toBeGreaterThan(0.5);
    expect(negative).toBeLessThan(-0.5);
    const repeated = sentimentWorld.gold(prompt, 'the staff was friendly . the staff was friendly .')!;
    const once = sentimentWorld.gold(prompt, 'the staff was friendly .')!;
    expect(repeated).toBeLessThan(once);
    expect(sentimentWorld.features(prompt, 'the staff was friendly . the staff was friendly .')).toMatchObject({ repeated: 1, finished: 1, words: 10 });
    expect(sentimentWorld.gold('what is 3 plus 4 ?', 'the staff was friendly .')).toBeUndefined();
    expect(sentimentWorld.gold(`${prompt} thanks !`, 'the staff was friendly .')).toBe(once);
  });

  it('has enough distinct training prompts for the 15K budget', () => {
    const data = buildWorldData(sentimentWorld, { seed: 1, promptBudget: 15000, rounds: 3, sftExamples: 10, evalPrompts: 400 });
    expect(data.roundPrompts[2]).toHaveLength(7500);
  });
});

describe('the listing world', () => {
  const gold = (prompt: string, response: string) => listingWorld.gold(prompt, response)!;
  const prompt = 'name three fruits for a picnic with my aunt .';

  it('scores count, kind, chatter, length and repeats as documented', () => {
    expect(gold(prompt, 'apple , pear and plum .')).toBeCloseTo(1 + 0.5 - 0.004 * 23, 10);
    expect(gold(prompt, 'apple , pear , plum and kiwi .')).toBeCloseTo(0.5 - 0.004 * 30, 10);
    expect(gold(prompt, 'apple , pear and dog .')).toBeCloseTo(1 - 0.004 * 22, 10);
    expect(gold(prompt, 'sure ! here are three fruits : apple , pear and plum . have fun !')).toBeCloseTo(1.5 - 0.05 * 10 - 0.004 * 65, 10);
    expect(gold(prompt, 'apple , apple and plum .')).toBeCloseTo(1.5 - 0.004 * 24 - 0.3, 10);
    expect(gold(prompt, 'apple , pear and plum')).toBeCloseTo(1.5 - 0.004 * 21 - 0.5, 10);
    expect(listingWorld.features(prompt, 'apple , pear and dog . enjoy !')).toMatchObject({ items: 3, count_right: 1, on_kind: 0, extra_words: 2, finished: 1 });
    expect(listingWorld.gold('what is 3 plus 4 ?', 'apple .')).toBeUndefined();
  });

  it('prefers the bare list of the asked size over every other style', () => {
    const bare = gold(prompt, 'mango , grape and lemon .');
    for (const other of ['mango , grape .', 'mango , grape , lemon and peach .', 'mango , grape and tiger .', 'of course . my favourite fruits are mango , grape and lemon . enjoy !', 'mango , grape and lemon . they are all easy to find .']) {
      expect(bare).toBeGreaterThan(gold(prompt, other));
    }
  });

  it('has enough distinct training prompts for the 15K budget', () => {
    // The demo and the campaign draw all three rounds' prompt sets whatever the rounds they run (the world's data is
    // fixed): 495 + 1,995 + 4,995 + 7,500 distinct training prompts.
    const data = buildWorldData(listingWorld, { seed: 1, promptBudget: 15000, rounds: 3, sftExamples: 10, evalPrompts: 400 });
    expect(data.roundPrompts[2]).toHaveLength(7500);
  });
});

describe.each([...WORLDS.values()])('world $name', (world) => {
  it('is deterministic from its seed and parses every prompt it draws', () => {
    const draw = (seed: number) => {
      const rng = new WorldRng(seed, 'test');
      return Array.from({ length: 50 }, () => {
        const prompt = world.samplePrompt(rng, 'train');
        return [prompt, world.sampleResponse(rng, prompt)];
      });
    };
    expect(draw(3)).toEqual(draw(3));
    expect(draw(3)).not.toEqual(draw(4));
    for (const [prompt, response] of draw(5)) {
      expect(typeof world.gold(prompt, response)).toBe('number');
      expect(response).toMatch(/[.!?]$/);
    }
  });

  it('keeps evaluation prompts out of training: whole held-out cells, disjoint sets of the paper’s sizes', () => {
    const data = buildWorldData(world, { seed: 1, promptBudget: 1000, rounds: 3, sftExamples: 2000, evalPrompts: 100 });
    const sizes = promptSetSizes(1000, 3);
    expect(sizes).toEqual({ seed: 33, rounds: [133, 333, 500] });
    expect(data.seedPrompts).toHaveLength(33);
    expect(data.roundPrompts.map((r) => r.length)).toEqual([133, 333, 500]);
    const training = [...data.seedPrompts, ...data.roundPrompts.flat()].map((p) => p.prompt);
    expect(new Set(training).size).toBe(training.length);
    const seen = new Set([...training, ...data.sft.map((s) => s.prompt)]);
    expect(data.evalPrompts).toHaveLength(100);
    for (const { prompt } of data.evalPrompts) expect(seen.has(prompt)).toBe(false);
    expect(buildWorldData(world, { seed: 1, promptBudget: 1000, rounds: 3, sftExamples: 2000, evalPrompts: 100 })).toEqual(data);
  });

  it("gives the gold-preferred behaviour room to grow: two SFT-distribution samples rarely tie on gold", () => {
    const rng = new WorldRng(9, 'ties');
    let ties = 0;
    const scores: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const prompt = world.samplePrompt(rng, 'eval');
      const a = world.gold(prompt, world.sampleResponse(rng, prompt))!;
      const b = world.gold(prompt, world.sampleResponse(rng, prompt))!;
      if (a === b) ties++;
      scores.push(a);
    }
    expect(ties / 2000).toBeLessThan(0.2);
    // Headroom: the average sample is well below the best samples.
    scores.sort((x, y) => x - y);
    const mean = scores.reduce((x, y) => x + y, 0) / scores.length;
    expect(scores[Math.floor(0.95 * scores.length)] - mean).toBeGreaterThan(0.3);
  });
});

describe('world helpers', () => {
  it('holds out a fifth of the cells, and some of every template and slot', () => {
    let held = 0;
    for (let t = 0; t < 5; t++) for (let s = 0; s < 10; s++) held += isHeldOut(t, s) ? 1 : 0;
    expect(held).toBe(10);
  });

  it('matches templates with repeated and multi-word placeholders', () => {
    const pattern = templatePattern('{name} has {a} {obj} . how many {obj} does {name} have ?');
    expect(pattern.exec('sam has 3 pens . how many pens does sam have ?')?.groups).toMatchObject({ name: 'sam', a: '3', obj: 'pens' });
    expect(pattern.test('sam has 3 pens . how many cups does sam have ?')).toBe(false);
    expect(templatePattern('review the {place} you visited with {who} .').exec('review the gym you visited with my team .')?.groups?.who).toBe('my team');
  });

  it('rejects bad options and unknown worlds by name', () => {
    expect(() => getWorld('chess')).toThrow("unknown world 'chess' (known: arithmetic, sentiment, listing)");
    expect(() => buildWorldData(arithmeticWorld, { seed: 1, promptBudget: 0, rounds: 1, sftExamples: 1, evalPrompts: 1 })).toThrow('promptBudget');
    expect(() => buildWorldData(arithmeticWorld, { seed: 1, promptBudget: 10, rounds: 4, sftExamples: 1, evalPrompts: 1 })).toThrow('rounds');
    expect(() => new WorldRng(-1, 'x')).toThrow('non-negative integer');
  });
});

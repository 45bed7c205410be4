import { arithmeticWorld } from './arithmetic';
import { listingWorld } from './listing';
import { sentimentWorld } from './sentiment';
import type { World } from './world';

export * from './world';
export * from './data';
export { arithmeticWorld } from './arithmetic';
export { sentimentWorld } from './sentiment';
export { listingWorld } from './listing';

/** Every world, by name. The judge registers each one's gold annotator as the rule judge `world.rule`. */
export const WORLDS: ReadonlyMap<string, World> = new Map([arithmeticWorld, sentimentWorld, listingWorld].map((w) => [w.name, w]));

export function getWorld(name: string): World {
  const world = WORLDS.get(name);
  if (!world) throw new Error(`unknown world '${name}' (known: ${[...WORLDS.keys()].join(', ')})`);
  return world;
}

/** Types of the parts of npm `vader-sentiment` (a JavaScript port of VADER) the sentiment world uses. */
declare module 'vader-sentiment' {
  export const SentimentIntensityAnalyzer: {
    polarity_scores(text: string): { neg: number; neu: number; pos: number; compound: number };
  };
}

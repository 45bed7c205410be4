"""A judge of your own: any `score(prompt, response) -> float` served as alignment.v1.Judge, for a run's
evaluation.gold_judge_address (the gold annotator) or judge_address (the rounds' labels); README.md here. Needs the
Python client's stubs (pip install ./clients/python).

    python examples/python-judge/server.py --scorer examples/python-judge/scorer.py:score --rule my/scorer --port 50070
"""

import argparse, hashlib, importlib, importlib.util, json, math, os
from concurrent import futures
from urllib.parse import unquote, urlparse

import grpc
from alignment_client.contracts import common_pb2, judge_pb2, judge_pb2_grpc


def load_scorer(target):
    """`module:function` or `path/to/file.py:function`."""
    module, _, name = target.rpartition(":")
    if module.endswith(".py"):
        spec = importlib.util.spec_from_file_location("user_scorer", module)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    else:
        mod = importlib.import_module(module)
    return getattr(mod, name)


class ScoreJudge(judge_pb2_grpc.JudgeServicer):
    """JudgePairs with JUDGE_METHOD_RULE, as the stack's rules judge (judge.proto): of each line's first two responses
    (or, with PAIRING_BEST_WORST, its highest- against its lowest-scored distinct response) the higher score is
    chosen; identical responses, scores closer than rule.tie_tolerance and non-finite scores are dropped (and
    counted); a pair with a response cut at max_new_tokens (finish reason "length") is dropped by default,
    penalized by unfinished_penalty with UNFINISHED_PAIRS_PENALIZE, judged as any other with UNFINISHED_PAIRS_KEEP."""

    def __init__(self, score, rule):
        self.score, self.rule = score, rule

    def JudgePairs(self, request, context):
        if request.method != common_pb2.JUDGE_METHOD_RULE or request.rule.rule != self.rule:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"rule.rule: this judge serves JUDGE_METHOD_RULE '{self.rule}'")
        if not request.output_uri:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "output_uri: is required (a path this judge can write)")
        best_worst = request.pairing == common_pb2.PAIRING_BEST_WORST
        policy = request.unfinished_pairs or common_pb2.UNFINISHED_PAIRS_DROP
        penalty = request.unfinished_penalty if request.HasField("unfinished_penalty") else 1.0
        path = lambda uri: unquote(urlparse(uri).path) if uri.startswith("file://") else uri
        counts, unfinished, pairs = judge_pb2.JudgeCounts(), judge_pb2.UnfinishedCounts(), []
        with open(path(request.responses.uri), encoding="utf-8") as f:
            items = [json.loads(line) for line in f if line.strip()]
        for i, item in enumerate(items):
            if request.shard.count > 1 and i % request.shard.count != request.shard.index:
                continue
            counts.num_prompts += 1
            prompt, responses, reasons = item["prompt"], item["responses"], item.get("finish_reasons") or []
            # A conversational prompt (a message list) is scored on its last user turn: the question answered.
            text = prompt if isinstance(prompt, str) else [m["content"] for m in prompt if m["role"] == "user"][-1]
            finished = lambda r: (reasons[responses.index(r)] if responses.index(r) < len(reasons) else "stop") != "length"
            non_empty = [r for r in responses if r.strip()]
            texts = list(dict.fromkeys(non_empty)) if best_worst else responses[:2]
            if len(responses) < 2 or (len(non_empty) < 2 if best_worst else not all(r.strip() for r in texts)):
                counts.dropped_invalid += 1
                continue
            if len(set(texts)) < 2:
                counts.dropped_identical += 1
                continue
            scores = [float(self.score(text, r)) - (penalty if policy == common_pb2.UNFINISHED_PAIRS_PENALIZE and not finished(r) else 0) for r in texts]
            if not all(map(math.isfinite, scores)):
                counts.dropped_invalid += 1
                continue
            hi = max(range(len(texts)), key=lambda k: (scores[k], -k)) if best_worst else 0
            lo = min((k for k in range(len(texts)) if k != hi), key=lambda k: (scores[k], k)) if best_worst else 1
            a, b, (sa, sb) = texts[hi], texts[lo], (scores[hi], scores[lo])
            if policy == common_pb2.UNFINISHED_PAIRS_DROP and not (finished(a) and finished(b)):
                unfinished.dropped += 1
            elif sa == sb or abs(sa - sb) < request.rule.tie_tolerance:
                counts.dropped_ties += 1
            else:
                (cs, chosen), (rs, rejected) = sorted(((sa, a), (sb, b)), key=lambda p: -p[0])
                unfinished.in_pairs += not (finished(a) and finished(b))
                pairs.append({"prompt_index": item.get("prompt_index", i), "prompt": prompt, "chosen": chosen, "rejected": rejected,
                              "chosen_score": cs, "rejected_score": rs, "margin": cs - rs, "method": "rule"})
        data = "".join(json.dumps(p) + "\n" for p in pairs).encode()
        out = path(request.output_uri)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out + ".tmp", "wb") as f:
            f.write(data)
        os.replace(out + ".tmp", out)
        counts.num_pairs = len(pairs)
        ref = common_pb2.ArtifactRef(uri=request.output_uri, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
        yield judge_pb2.JudgePairsResponse(result=judge_pb2.JudgePairsResult(pairs=ref, counts=counts, unfinished=unfinished))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scorer", default=os.path.join(os.path.dirname(__file__), "scorer.py") + ":score")
    parser.add_argument("--rule", default="python/score", help="the evaluation.rule this judge answers to")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50070, help="0 = any free port")
    args = parser.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    judge_pb2_grpc.add_JudgeServicer_to_server(ScoreJudge(load_scorer(args.scorer), args.rule), server)
    port = server.add_insecure_port(f"{args.host}:{args.port}")
    server.start()
    print(f"gold judge '{args.rule}' listening on {args.host}:{port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()

"""Recall of the local embedding model on paraphrases, Japanese and English.

`python -m bench.memory_recall`: 16 listener-post-like sentences in each language form the
memory; each is asked for by a paraphrase (same language, and across languages). Recall@k is the
share of paraphrases whose own post is among the k nearest (cosine, as pgvector ranks them).
Prints a table and writes bench/results/memory_recall.json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from db.memory import LOCAL_MODEL, LocalEmbedder

# (post, paraphrase) pairs; the Japanese ones are the station's everyday talk.
JA = [
    ("猫が窓辺で昼寝しています", "うちの子猫が窓のそばで眠っている"),
    ("今朝は雨で電車が遅れました", "雨のせいで列車が遅延した"),
    ("ラーメンが食べたい気分です", "お腹がすいて麺類が食べたい"),
    ("明日は娘の運動会です", "子どもの体育祭が明日ある"),
    ("夜勤明けでやっと帰宅しました", "夜の仕事が終わってようやく家に着いた"),
    ("桜がもう満開ですね", "花見の季節で桜がきれいに咲いている"),
    ("ジャズのピアノ曲をリクエストします", "ジャズピアノをかけてください"),
    ("受験勉強で毎日眠いです", "試験の勉強ばかりで寝不足だ"),
    ("週末は富士山に登ります", "今度の土日に富士山へ登山に行く"),
    ("新しい自転車を買いました", "自転車を新しく手に入れた"),
    ("台風で外に出られません", "嵐が来ていて家から出られない"),
    ("母の誕生日にケーキを焼きました", "お母さんの誕生日のためにケーキを作った"),
    ("会社の近くに新しいカフェができた", "職場のそばにコーヒー屋が開店した"),
    ("犬の散歩中に虹を見ました", "わんちゃんと歩いていたら虹が出ていた"),
    ("風邪をひいて声が出ません", "喉の調子が悪くて話せない"),
    ("今日は星がよく見えます", "今夜は夜空の星がきれいだ"),
]
EN = [
    ("My cat sleeps on the keyboard every morning", "Each morning my kitten naps on my laptop"),
    ("The train was late because of the rain", "Rain delayed my commute today"),
    ("I really want a bowl of ramen", "Craving noodles right now"),
    ("Tomorrow is my daughter's sports day", "My kid has a school athletics meet tomorrow"),
    ("Finally home after a night shift", "Just got back from working all night"),
    ("The cherry blossoms are in full bloom", "Sakura season, the trees are beautiful"),
    ("Could you play some jazz piano?", "Requesting a jazz piano tune"),
    ("Studying for exams makes me sleepy", "Exam prep has left me exhausted"),
    ("We are climbing Mount Fuji this weekend", "Going up Fuji on Saturday"),
    ("I bought a new bicycle", "Just got myself a new bike"),
    ("The typhoon keeps us indoors", "Stuck inside because of the storm"),
    ("I baked a cake for my mother's birthday", "Made a birthday cake for mum"),
    ("A new cafe opened near my office", "There's a new coffee shop by work"),
    ("Saw a rainbow while walking the dog", "A rainbow appeared on my dog walk"),
    ("I caught a cold and lost my voice", "I'm sick and can barely speak"),
    ("The stars are so clear tonight", "You can see lots of stars in the sky tonight"),
]
KS = (1, 3)


def recall(queries: np.ndarray, corpus: np.ndarray) -> dict[int, float]:
    """Query i's right answer is corpus row i (of the first len(queries) rows)."""
    ranks = np.argsort(-(queries @ corpus.T), axis=1)
    return {k: float(np.mean([i in ranks[i, :k] for i in range(len(queries))])) for k in KS}


def main() -> None:
    embedder = LocalEmbedder(threads=1)
    started = time.perf_counter()
    embedder.embed_sync(["warm"])
    load = time.perf_counter() - started
    posts_ja, para_ja = (embedder.embed_sync([p[i] for p in JA]) for i in (0, 1))
    posts_en, para_en = (embedder.embed_sync([p[i] for p in EN]) for i in (0, 1))
    both = np.vstack([posts_ja, posts_en])  # one memory holding both languages
    started = time.perf_counter()
    embedder.embed_sync([p for p, _ in JA] * 4)
    per_text = (time.perf_counter() - started) / (len(JA) * 4)
    rows = {
        "ja paraphrase -> ja post": recall(para_ja, both),
        "en paraphrase -> en post": recall(para_en, np.vstack([posts_en, posts_ja])),
        # Across languages, against the other language's posts only (the same-language twin of
        # the answer would otherwise be a right answer counted wrong).
        "ja paraphrase -> en posts only": recall(para_ja, posts_en),
        "en paraphrase -> ja posts only": recall(para_en, posts_ja),
    }
    print(f"model {LOCAL_MODEL}: loaded in {load:.2f} s, {per_text * 1000:.1f} ms per text")
    print(f"memory: {len(both)} posts ({len(JA)} Japanese, {len(EN)} English)\n")
    print(f"{'queries':42} " + " ".join(f"{'R@' + str(k):>6}" for k in KS))
    for name, r in rows.items():
        print(f"{name:42} " + " ".join(f"{r[k]:6.2f}" for k in KS))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    result = {
        "model": LOCAL_MODEL,
        "load_seconds": load,
        "seconds_per_text": per_text,
        "posts": len(both),
        "recall": {name: {f"R@{k}": r[k] for k in KS} for name, r in rows.items()},
    }
    (out / "memory_recall.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()

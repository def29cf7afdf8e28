"""The dice game of the rxExec guide: 10000 games of craps in chunks of 2000.

    python examples/dice.py                      # embedded Spark (local[*])
    python examples/dice.py --seed 777           # reproducible: same table every run
    python examples/dice.py --master none --seed 777   # no Spark (RxLocalSeq): the same table again
    ./spark-submit.sh examples/dice.py --seed 777
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter

from rxspark import RxLocalSeq, RxSpark, rx_exec


def play_dice() -> str:
    """One game: 7 or 11 wins at once, 2, 3 or 12 loses; otherwise roll for the point before a 7."""
    point = None
    while True:
        roll = random.randint(1, 6) + random.randint(1, 6)
        if point is None:
            if roll in (7, 11):
                return "Win"
            if roll in (2, 3, 12):
                return "Loss"
            point = roll
        elif roll == 7:
            return "Loss"
        elif roll == point:
            return "Win"


def main(argv: list[str] | None = None) -> dict[str, int]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", default=None, help="Spark master (default: the active session or local[*]); 'none' runs without Spark")
    parser.add_argument("--games", type=int, default=10000)
    parser.add_argument("--chunk-size", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=None, help="rng_seed for reproducible results")
    args = parser.parse_args(argv)

    context = RxLocalSeq() if args.master == "none" else RxSpark(master=args.master).connect()
    with context:
        started = time.perf_counter()
        games = rx_exec(play_dice, times_to_run=args.games, task_chunk_size=args.chunk_size, rng_seed=args.seed)
        elapsed = time.perf_counter() - started
    table = dict(sorted(Counter(games).items()))
    print(f"{'Loss':>6} {'Win':>6}")
    print(f"{table.get('Loss', 0):>6} {table.get('Win', 0):>6}")
    print(f"{args.games} games in {elapsed:.2f} s on {type(context).__name__}; expected win rate 244/495 = {244 / 495:.4f}, "
          f"observed {table.get('Win', 0) / args.games:.4f}")
    return table


if __name__ == "__main__":
    main()

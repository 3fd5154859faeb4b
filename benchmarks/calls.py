"""Calls: Python function and method calls of every common shape (plain,
with keywords and defaults, *args, methods, closures, a recursive
function), each doing almost nothing, in the spirit of the classic
`call_simple` / `call_method` benchmarks.

    python benchmarks/calls.py [ROUNDS]

`run(rounds)` returns the sum of everything the calls returned.
"""

import sys


def add(a, b):
    return a + b


def scaled(a, b, scale=2, offset=0):
    return a * scale + b + offset


def total(*values):
    return len(values) + values[0]


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def adder(k):
    def add_k(x):
        return x + k
    return add_k


class Counter:
    def __init__(self):
        self.value = 0

    def step(self, by):
        self.value += by
        return self.value

    @staticmethod
    def double(x):
        return 2 * x

    @classmethod
    def make(cls):
        return cls()


def run(rounds):
    acc = 0
    counter = Counter.make()
    add_three = adder(3)
    for i in range(rounds):
        acc += add(i, 1)
        acc += scaled(i, 2, offset=1)
        acc += scaled(a=i, b=1, scale=3)
        acc += total(i, 2, 3)
        acc += counter.step(1)
        acc += Counter.double(i)
        acc += add_three(i)
        if i % 100 == 0:
            acc += fib(12)
        acc %= 1_000_000_007
    return acc


if __name__ == "__main__":
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000))

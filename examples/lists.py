"""List processing: indexing, item assignment, append, len."""
import sys


def sieve(n: int) -> list[int]:
    flags = [True] * (n + 1)
    flags[0] = flags[1] = False
    i = 2
    while i * i <= n:
        if flags[i]:
            for j in range(i * i, n + 1, i):
                flags[j] = False
        i += 1
    primes = []
    for k in range(n + 1):
        if flags[k]:
            primes.append(k)
    return primes


if __name__ == "__main__":
    primes = sieve(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
    print(len(primes), primes[-1], sum(primes[:100]))

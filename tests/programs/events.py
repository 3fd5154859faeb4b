"""Loops that make every COPYJIT_LOG event (tests/test_log.py, tests/test_explain_html.py): one that
aborts, one with a bridge, a short loop given up, and one whose trace is dropped, then given up."""

def with_a_dict(n):
    d = {}
    for i in range(n):
        d[i] = i
    return len(d)


def branchy(n):
    t = 0
    for i in range(n):
        if i % 3:
            t += i
        else:
            t -= 1
    return t


def three():
    t = 0
    for j in range(3):
        t += j
    return t


def calls_three(n):
    t = 0
    for _ in range(n):
        t += three()
    return t


def switches(n):
    d = {}
    t = 0
    for i in range(n):
        if i < 100:
            t += i
        else:
            d[i] = i
    return t + len(d)


if __name__ == "__main__":
    print(with_a_dict(100), branchy(100), calls_three(2000), switches(300))

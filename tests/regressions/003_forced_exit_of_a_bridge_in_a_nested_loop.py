# copyjit regression (tests/test_regressions.py runs it under CPython and the JIT)
# threshold: 1
# env: COPYJIT_FAIL_GUARDS=_ADD_INT
# The first bug fault injection found: with every _ADD_INT failing, the
# inner loop's exit is bridged and the bridge leaves at once, with t and j
# pushed (the stack full); when the outer loop is recorded, the recorder
# runs the inner trace, whose exit wrote one slot past the frame: the
# first word of the recorder's own Python frame (its code object). A crash.
def main():
    t = 0
    for i in range(100):
        for j in range(40):
            t += j
    return t


print(main())

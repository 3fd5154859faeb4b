"""N-queens: every way of placing n queens on an n x n board so that none
attacks another, found by backtracking over columns with the attacked
columns and diagonals kept in lists.

    python benchmarks/nqueens.py [N]

`run(n)` returns the number of solutions and a checksum of them all
(each solution as its column per row).
"""

import sys


def solutions(n):
    """Yield each solution as a tuple: the queen's column in each row."""
    columns = [False] * n
    down = [False] * (2 * n - 1)   # row + column
    up = [False] * (2 * n - 1)     # row - column + n - 1
    placed = [0] * n
    row = 0
    column = 0
    while True:
        while column < n and (columns[column] or down[row + column] or up[row - column + n - 1]):
            column += 1
        if column < n:
            placed[row] = column
            columns[column] = down[row + column] = up[row - column + n - 1] = True
            if row == n - 1:
                yield tuple(placed)
                columns[column] = down[row + column] = up[row - column + n - 1] = False
                column += 1
            else:
                row += 1
                column = 0
            continue
        if row == 0:
            return
        row -= 1
        column = placed[row]
        columns[column] = down[row + column] = up[row - column + n - 1] = False
        column += 1


def run(n):
    count = checksum = 0
    for solution in solutions(n):
        count += 1
        for column in solution:
            checksum = (checksum * n + column) % 1_000_000_007
    return count, checksum


if __name__ == "__main__":
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else 8))

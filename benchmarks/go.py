"""Go: random games of Go on a 9 x 9 board (Monte Carlo playouts, as the
classic `go` benchmark's engine plays them), with stones, groups found by
flood fill, liberties, captures, no suicide and the simple ko rule;
empty points as objects, the board as a class.

    python benchmarks/go.py [GAMES]

`run(games)` plays that many games (from a fixed seed) and returns the
sum of their area scores and of their lengths.
"""

import sys

SIZE = 9
EMPTY, BLACK, WHITE = 0, 1, 2
MAX_MOVES = 3 * SIZE * SIZE


class Random:
    """A linear congruential generator: the same numbers on every Python."""

    def __init__(self, seed):
        self.state = seed

    def below(self, n):
        self.state = (self.state * 1103515245 + 12345) % 2147483648
        return (self.state >> 8) % n


class Square:
    def __init__(self, position):
        self.position = position
        self.colour = EMPTY
        self.neighbours = []


class Board:
    def __init__(self):
        self.squares = [Square(p) for p in range(SIZE * SIZE)]
        for square in self.squares:
            row, column = divmod(square.position, SIZE)
            for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                r, c = row + dr, column + dc
                if 0 <= r < SIZE and 0 <= c < SIZE:
                    square.neighbours.append(self.squares[r * SIZE + c])
        self.ko = None

    def group(self, square):
        """The stones connected to `square`, and whether they have a liberty."""
        colour = square.colour
        stones = [square]
        seen = {square.position}
        free = False
        i = 0
        while i < len(stones):
            for n in stones[i].neighbours:
                if n.colour == EMPTY:
                    free = True
                elif n.colour == colour and n.position not in seen:
                    seen.add(n.position)
                    stones.append(n)
            i += 1
        return stones, free

    def legal(self, square, colour):
        if square.colour != EMPTY or square is self.ko:
            return False
        other = 3 - colour
        square.colour = colour
        try:
            for n in square.neighbours:
                if n.colour == other and not self.group(n)[1]:
                    return True  # captures
            return self.group(square)[1]  # not suicide
        finally:
            square.colour = EMPTY

    def play(self, square, colour):
        square.colour = colour
        other = 3 - colour
        captured = []
        for n in square.neighbours:
            if n.colour == other:
                stones, free = self.group(n)
                if not free:
                    for stone in stones:
                        stone.colour = EMPTY
                    captured.extend(stones)
        self.ko = captured[0] if len(captured) == 1 else None

    def eye_like(self, square, colour):
        """Filling your own single-point eye is never a good random move."""
        return all(n.colour == colour for n in square.neighbours)

    def random_move(self, colour, rng):
        empties = [s for s in self.squares if s.colour == EMPTY and not self.eye_like(s, colour)]
        while empties:
            square = empties.pop(rng.below(len(empties)))
            if self.legal(square, colour):
                return square
        return None

    def score(self, colour):
        """Area score: stones, and empty points next to only that colour."""
        total = 0
        for square in self.squares:
            if square.colour == colour:
                total += 1
            elif square.colour == EMPTY:
                colours = {n.colour for n in square.neighbours}
                if colours == {colour}:
                    total += 1
        return total


def playout(rng):
    board = Board()
    colour = BLACK
    passes = moves = 0
    while passes < 2 and moves < MAX_MOVES:
        square = board.random_move(colour, rng)
        if square is None:
            passes += 1
        else:
            passes = 0
            board.play(square, colour)
        colour = 3 - colour
        moves += 1
    return board.score(BLACK) - board.score(WHITE), moves


def run(games):
    rng = Random(42)
    total_score = total_moves = 0
    for _ in range(games):
        score, moves = playout(rng)
        total_score += score
        total_moves += moves
    return total_score, total_moves


if __name__ == "__main__":
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else 20))

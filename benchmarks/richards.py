"""Richards: Martin Richards' simulation of an operating system's task
dispatcher (an idle task, a worker, two handlers and two devices passing
packets), the classic object-oriented benchmark.

    python benchmarks/richards.py [ITERATIONS]

`run(iterations)` runs the simulation that many times and returns the
queue and hold counts of the last run (23246 and 9297, as in every
implementation of Richards) with the number of runs.
"""

import sys

IDLE, WORKER, HANDLER_A, HANDLER_B, DEVICE_A, DEVICE_B = range(6)
K_DEVICE, K_WORK = 0, 1
BUFFER_SIZE = 4


class Packet:
    def __init__(self, link, ident, kind):
        self.link = link
        self.ident = ident
        self.kind = kind
        self.datum = 0
        self.data = [0] * BUFFER_SIZE

    def append_to(self, queue):
        self.link = None
        if queue is None:
            return self
        last = queue
        while last.link is not None:
            last = last.link
        last.link = self
        return queue


class Task:
    def __init__(self, scheduler, ident, priority, queue, packet_pending, waiting, held):
        self.scheduler = scheduler
        self.link = scheduler.tasks
        self.ident = ident
        self.priority = priority
        self.queue = queue
        self.packet_pending = packet_pending
        self.waiting = waiting
        self.held = held
        scheduler.tasks = self
        scheduler.table[ident] = self

    def add_packet(self, packet, current):
        """Queue `packet` here; the task to run next."""
        if self.queue is None:
            self.queue = packet
            self.packet_pending = True
            if self.priority > current.priority:
                return self
        else:
            self.queue = packet.append_to(self.queue)
        return current

    def take_packet(self):
        """The first packet of a task waiting with one, which runs now."""
        packet = self.queue
        self.queue = packet.link
        self.packet_pending = self.queue is not None
        self.waiting = False
        return packet


class IdleTask(Task):
    def __init__(self, scheduler, ident, priority, queue, count):
        Task.__init__(self, scheduler, ident, priority, queue, False, False, False)
        self.control = 1
        self.count = count

    def step(self, packet):
        s = self.scheduler
        self.count -= 1
        if self.count == 0:
            return s.hold_self()
        if self.control & 1 == 0:
            self.control //= 2
            return s.release(DEVICE_A)
        self.control = (self.control // 2) ^ 0xD008
        return s.release(DEVICE_B)


class WorkerTask(Task):
    def __init__(self, scheduler, ident, priority, queue):
        Task.__init__(self, scheduler, ident, priority, queue, True, True, False)
        self.destination = HANDLER_A
        self.count = 0

    def step(self, packet):
        s = self.scheduler
        if packet is None:
            return s.wait()
        self.destination = HANDLER_B if self.destination == HANDLER_A else HANDLER_A
        packet.ident = self.destination
        packet.datum = 0
        for i in range(BUFFER_SIZE):
            self.count += 1
            if self.count > 26:
                self.count = 1
            packet.data[i] = ord("A") + self.count - 1
        return s.queue(packet)


class HandlerTask(Task):
    def __init__(self, scheduler, ident, priority, queue):
        Task.__init__(self, scheduler, ident, priority, queue, True, True, False)
        self.work = None
        self.device = None

    def step(self, packet):
        s = self.scheduler
        if packet is not None:
            if packet.kind == K_WORK:
                self.work = packet.append_to(self.work)
            else:
                self.device = packet.append_to(self.device)
        if self.work is not None:
            work = self.work
            count = work.datum
            if count >= BUFFER_SIZE:
                self.work = work.link
                return s.queue(work)
            if self.device is not None:
                device = self.device
                self.device = device.link
                device.datum = work.data[count]
                work.datum = count + 1
                return s.queue(device)
        return s.wait()


class DeviceTask(Task):
    def __init__(self, scheduler, ident, priority, queue):
        Task.__init__(self, scheduler, ident, priority, queue, False, True, False)
        self.pending = None

    def step(self, packet):
        s = self.scheduler
        if packet is None:
            if self.pending is None:
                return s.wait()
            pending, self.pending = self.pending, None
            return s.queue(pending)
        self.pending = packet
        return s.hold_self()


class Scheduler:
    def __init__(self):
        self.tasks = None
        self.table = [None] * 6
        self.current = None
        self.queue_count = 0
        self.hold_count = 0

    def schedule(self):
        task = self.tasks
        while task is not None:
            if task.held or (not task.packet_pending and task.waiting):
                task = task.link
                continue
            packet = task.take_packet() if task.packet_pending and task.waiting else None
            self.current = task
            task = task.step(packet)

    def wait(self):
        self.current.waiting = True
        return self.current

    def hold_self(self):
        self.hold_count += 1
        self.current.held = True
        return self.current.link

    def release(self, ident):
        task = self.table[ident]
        task.held = False
        return task if task.priority > self.current.priority else self.current

    def queue(self, packet):
        task = self.table[packet.ident]
        self.queue_count += 1
        packet.link = None
        packet.ident = self.current.ident
        task.waiting = False
        return task.add_packet(packet, self.current)


def richards():
    """One run of the simulation: (queue count, hold count)."""
    s = Scheduler()
    IdleTask(s, IDLE, 1, None, 10000)
    queue = Packet(None, 0, K_WORK)
    queue = Packet(queue, 0, K_WORK)
    WorkerTask(s, WORKER, 1000, queue)
    queue = None
    for _ in range(3):
        queue = Packet(queue, DEVICE_A, K_DEVICE)
    HandlerTask(s, HANDLER_A, 2000, queue)
    queue = None
    for _ in range(3):
        queue = Packet(queue, DEVICE_B, K_DEVICE)
    HandlerTask(s, HANDLER_B, 3000, queue)
    DeviceTask(s, DEVICE_A, 4000, None)
    DeviceTask(s, DEVICE_B, 5000, None)
    s.schedule()
    return s.queue_count, s.hold_count


def run(iterations):
    result = None
    for _ in range(iterations):
        result = richards()
    return result, iterations


if __name__ == "__main__":
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else 10))

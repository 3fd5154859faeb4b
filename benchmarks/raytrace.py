"""Raytrace: a small object-oriented ray tracer (vectors as objects,
spheres and a plane, point lights, shadows, reflection, Lambert and
Phong shading), in the spirit of the classic raytrace benchmark.

    python benchmarks/raytrace.py [SIZE]

`run(size)` renders a size x size image and returns a checksum of its
8-bit pixels.
"""

import math
import sys

EPSILON = 0.00001
MAX_DEPTH = 3


class Vector:
    def __init__(self, x, y, z):
        self.x = x
        self.y = y
        self.z = z

    def dot(self, other):
        return self.x * other.x + self.y * other.y + self.z * other.z

    def magnitude(self):
        return math.sqrt(self.dot(self))

    def add(self, other):
        return Vector(self.x + other.x, self.y + other.y, self.z + other.z)

    def sub(self, other):
        return Vector(self.x - other.x, self.y - other.y, self.z - other.z)

    def scale(self, factor):
        return Vector(self.x * factor, self.y * factor, self.z * factor)

    def cross(self, other):
        return Vector(self.y * other.z - self.z * other.y,
                      self.z * other.x - self.x * other.z,
                      self.x * other.y - self.y * other.x)

    def normalized(self):
        return self.scale(1.0 / self.magnitude())

    def reflect_through(self, normal):
        return self.sub(normal.scale(2 * self.dot(normal)))


class Ray:
    def __init__(self, point, vector):
        self.point = point
        self.vector = vector.normalized()

    def point_at(self, t):
        return self.point.add(self.vector.scale(t))


class Sphere:
    def __init__(self, centre, radius):
        self.centre = centre
        self.radius = radius

    def intersection_time(self, ray):
        cp = self.centre.sub(ray.point)
        v = cp.dot(ray.vector)
        discriminant = self.radius * self.radius - (cp.dot(cp) - v * v)
        if discriminant < 0:
            return None
        return v - math.sqrt(discriminant)

    def normal_at(self, p):
        return p.sub(self.centre).normalized()


class Halfspace:
    def __init__(self, point, normal):
        self.point = point
        self.normal = normal.normalized()

    def intersection_time(self, ray):
        v = ray.vector.dot(self.normal)
        if v:
            return self.point.sub(ray.point).dot(self.normal) / v
        return None

    def normal_at(self, p):
        return self.normal


class Surface:
    def __init__(self, base_colour, specular=0.2, lambert=0.6, ambient=0.2):
        self.base_colour = base_colour
        self.specular = specular
        self.lambert = lambert
        self.ambient = ambient

    def colour_at(self, scene, ray, p, normal, depth):
        colour = Vector(0.0, 0.0, 0.0)
        if self.specular and depth < MAX_DEPTH:
            reflected = Ray(p, ray.vector.reflect_through(normal))
            colour = colour.add(scene.ray_colour(reflected, depth + 1).scale(self.specular))
        lambert = 0.0
        for light in scene.lights:
            if scene.visible(light, p):
                contribution = light.sub(p).normalized().dot(normal)
                if contribution > 0:
                    lambert += contribution
        lambert = min(1.0, lambert)
        colour = colour.add(self.base_colour.scale(lambert * self.lambert))
        return colour.add(self.base_colour.scale(self.ambient))


class Scene:
    def __init__(self):
        self.objects = []
        self.lights = []
        self.eye = Vector(0.0, 1.8, 10.0)
        self.look_at = Vector(0.0, 3.0, 0.0)
        self.field_of_view = 45.0

    def add(self, thing, surface):
        self.objects.append((thing, surface))

    def intersect(self, ray):
        """The nearest (time, thing, surface) that `ray` hits, or None."""
        nearest = None
        for thing, surface in self.objects:
            t = thing.intersection_time(ray)
            if t is not None and t > EPSILON and (nearest is None or t < nearest[0]):
                nearest = (t, thing, surface)
        return nearest

    def visible(self, light, p):
        hit = self.intersect(Ray(p, light.sub(p)))
        return hit is None or hit[0] > light.sub(p).magnitude()

    def ray_colour(self, ray, depth=0):
        hit = self.intersect(ray)
        if hit is None:
            return Vector(0.0, 0.0, 0.0)
        t, thing, surface = hit
        p = ray.point_at(t)
        return surface.colour_at(self, ray, p, thing.normal_at(p), depth)

    def render(self, width, height):
        """The image's pixels, rows of (r, g, b) bytes."""
        fov = math.radians(self.field_of_view)
        forward = self.look_at.sub(self.eye).normalized()
        right = forward.cross(Vector(0.0, 1.0, 0.0)).normalized()
        up = right.cross(forward).normalized()
        aspect = height / width
        half_width = math.tan(fov / 2)
        half_height = aspect * half_width
        pixel_width = half_width * 2 / (width - 1)
        pixel_height = half_height * 2 / (height - 1)
        rows = []
        for y in range(height):
            row = []
            for x in range(width):
                xcomp = right.scale(x * pixel_width - half_width)
                ycomp = up.scale(y * pixel_height - half_height)
                colour = self.ray_colour(Ray(self.eye, forward.add(xcomp).add(ycomp)))
                row.append((byte(colour.x), byte(colour.y), byte(colour.z)))
            rows.append(row)
        return rows


def byte(channel):
    return max(0, min(255, int(channel * 255)))


def scene():
    s = Scene()
    s.add(Sphere(Vector(1.0, 3.0, -10.0), 2.0), Surface(Vector(1.0, 1.0, 0.0)))
    for y in range(6):
        s.add(Sphere(Vector(-3.0 - y * 0.4, 2.3, -5.0), 0.4), Surface(Vector(y / 6.0, 1 - y / 6.0, 0.5)))
    s.add(Halfspace(Vector(0.0, 0.0, 0.0), Vector(0.0, 1.0, 0.0)), Surface(Vector(0.6, 0.6, 0.6), 0.3))
    s.lights.append(Vector(30.0, 30.0, 10.0))
    s.lights.append(Vector(-10.0, 100.0, 30.0))
    return s


def run(size):
    checksum = 0
    for row in scene().render(size, size):
        for r, g, b in row:
            checksum = (checksum * 31 + r * 65536 + g * 256 + b) % 1_000_000_007
    return checksum


if __name__ == "__main__":
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else 50))

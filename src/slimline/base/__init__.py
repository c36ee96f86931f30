"""Stage: the base image, and what the image's interpreter is, read from the image itself.

Takes a base reference (or none: the Debian suite that fits ``requires-python``) and a platform;
returns a :class:`~slimline.base.resolve.Base`: the image and its
:class:`~slimline.target.Target` (Python X.Y, ABI, libc, architecture).

Modules, in order:

* ``debian``: bases assembled from signed Debian packages (a package of its own)
* ``detect``: the target of any base, from its files (labels fast path)
* ``users``: the base's non-root user
* ``dpkg``: the Debian packages a base holds
* ``elf``: the system libraries a wheel's native code links
* ``native``: what a base lacks for the wheels on top of it
* ``builder``: the root file system that compiles packages for the image
* ``rootfs``: an image unpacked once, safely, to run its programs (bytecode, builds)
* ``resolve``: a reference to a ``Base`` (Debian bases pinned for a day)
"""

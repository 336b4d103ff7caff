{
  "targets": [
    {
      "target_name": "kata_native",
      "sources": ["kata-native.c", "vsock.c", "terminal.c", "fd-message.c", "reap.c", "flock.c", "crng-seed.c", "clock.c", "remove-tree.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}

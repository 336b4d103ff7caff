{
  "targets": [
    {
      "target_name": "kata_native",
      "sources": ["kata-native.c", "vsock.c", "terminal.c", "fd-message.c", "reap.c", "flock.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}

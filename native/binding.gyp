{
  "targets": [
    {
      "target_name": "kata_vsock",
      "sources": ["kata-vsock.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}

// write_file_atomic: write to a temporary file beside the target, fsync, rename over the target.
// rename() within one directory is atomic on POSIX file systems, so readers see either the old
// file or the complete new one, never a torn write; fsync before the rename makes sure the new
// contents reach the disk before the name points at them.
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "engine/io/checkpoint.h"

namespace hone::io {
namespace {

[[noreturn]] void io_error(const std::string& path, const std::string& what, int err) {
  throw std::runtime_error(path + ": " + what + ": " + std::strerror(err));
}

std::string directory_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Makes the rename itself durable. Best effort: some file systems refuse fsync on directories.
void sync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

void write_file_atomic(const std::string& path, const std::function<void(std::FILE*)>& write) {
  if (path.empty() || path.back() == '/')
    throw std::invalid_argument("write_file_atomic: '" + path + "' is not a file name");
  const std::string dir = directory_of(path);
  const std::string base = path.substr(path.find_last_of('/') == std::string::npos
                                           ? 0
                                           : path.find_last_of('/') + 1);
  // Hidden, and unique (mkstemp), so that concurrent writers of one path do not collide.
  std::string tmp = dir + "/." + base + ".tmp-XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) io_error(path, "cannot create a temporary file in '" + dir + "'", errno);

  mode_t mode = 0644;
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) mode = st.st_mode & 07777;
  ::fchmod(fd, mode);  // mkstemp creates 0600

  std::FILE* f = ::fdopen(fd, "wb");
  if (!f) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    io_error(path, "cannot open the temporary file", err);
  }
  try {
    write(f);
    if (std::fflush(f) != 0 || std::ferror(f)) io_error(path, "write failed", errno ? errno : EIO);
    if (::fsync(::fileno(f)) != 0) io_error(path, "fsync failed", errno);
  } catch (...) {
    std::fclose(f);
    ::unlink(tmp.c_str());
    throw;
  }
  if (std::fclose(f) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    io_error(path, "closing the temporary file failed", err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    io_error(path, "cannot rename the temporary file into place", err);
  }
  sync_directory(dir);
}

}  // namespace hone::io

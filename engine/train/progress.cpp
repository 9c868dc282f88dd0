#include "engine/train/progress.h"

#include <unistd.h>

namespace hone {

std::string format_duration(double s) {
  char buf[32];
  const int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", long(t / 3600), long(t % 3600 / 60));
  else
    std::snprintf(buf, sizeof buf, "%ldm%02lds", long(t / 60), long(t % 60));
  return buf;
}

ProgressLine::ProgressLine(int64_t total_steps, std::string unit, int64_t every, std::FILE* out)
    : total_(total_steps), unit_(std::move(unit)), every_(every), out_(out),
      tty_(isatty(fileno(out)) != 0), start_(std::chrono::steady_clock::now()) {}

void ProgressLine::update(int64_t step, double loss, double lr, int64_t work, const std::string& extra) {
  work_done_ += work;
  const bool last = step == total_;
  if (!tty_ && !last && step % every_ != 0 && step != 1) return;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? double(work_done_) / elapsed : 0.0;
  const double eta = step > 0 ? elapsed / double(step) * double(total_ - step) : 0.0;
  std::fprintf(out_, "%sstep %5ld/%ld | loss %.4f | lr %.2e | %.0f %s/s | elapsed %s | eta %s%s%s",
               tty_ ? "\r\033[K" : "", long(step), long(total_), loss, lr, rate, unit_.c_str(),
               format_duration(elapsed).c_str(), format_duration(eta).c_str(), extra.empty() ? "" : " | ",
               extra.c_str());
  if (!tty_) std::fputc('\n', out_);
  std::fflush(out_);
}

void ProgressLine::finish() {
  if (tty_) std::fputc('\n', out_);
  std::fflush(out_);
}

}  // namespace hone

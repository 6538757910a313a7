#include "server/http/http_types.h"

#include <cstdint>

namespace dray {

namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace


void ClientGone::OnGone(std::function<void()> fn) {
  std::function<void()> watch;
  bool gone_already = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (fired_) {
      gone_already = true;
    } else {
      fn_ = std::move(fn);
      watch = std::move(watch_);
    }
  }
  if (gone_already) return fn();
  if (watch) watch();
}

void ClientGone::SetWatch(std::function<void()> watch) {
  std::lock_guard<std::mutex> lock(mu_);
  watch_ = std::move(watch);
}

void ClientGone::Fire() {
  std::function<void()> fn;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (fired_) return;
    fired_ = true;
    fn = std::move(fn_);
  }
  if (fn) fn();
}

std::string HttpRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) return v;
  }
  return std::string();
}

HttpStream::HttpStream(std::size_t max_queued_bytes) : max_queued_(max_queued_bytes) {}

bool HttpStream::Write(std::string_view bytes) {
  std::function<void()> wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_ || ended_) return false;
    if (queued_.size() + bytes.size() > max_queued_) {
      // Too far behind: cut it off; it resumes from its last event id.
      ended_ = true;
      queued_.clear();
    } else {
      queued_.append(bytes);
    }
    wake = wake_;
  }
  if (wake) wake();
  return true;
}

void HttpStream::End() {
  std::function<void()> wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ended_) return;
    ended_ = true;
    wake = wake_;
  }
  if (wake) wake();
}

void HttpStream::OnClose(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!closed_) {
      on_close_ = std::move(fn);
      return;
    }
  }
  if (fn) fn();
}

void HttpStream::Attach(std::function<void()> wake) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    wake_ = wake;
  }
  wake();
}

std::string HttpStream::Take(bool* ended) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  out.swap(queued_);
  *ended = ended_ && out.empty();
  return out;
}

void HttpStream::Closed() {
  std::function<void()> fn;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    closed_ = true;
    queued_.clear();
    wake_ = nullptr;
    fn = std::move(on_close_);
  }
  if (fn) fn();
}

HttpResponse HttpResponse::Json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::Error(int status, std::string_view code, std::string_view message) {
  std::string body = "{\"error\":{\"code\":";
  AppendJsonString(code, &body);
  body += ",\"message\":";
  AppendJsonString(message, &body);
  body += "}}";
  return Json(status, std::move(body));
}

}  // namespace dray

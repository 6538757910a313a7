#include "cli/schedule_command.h"

#include <boost/json.hpp>
#include <charconv>
#include <cstdio>
#include <memory>

#include "core/json_codec.h"
#include "core/json_writer.h"
#include "core/time_format.h"

namespace json = boost::json;

namespace dray {

StatusOr<std::int64_t> ParseDuration(std::string_view text) {
  const auto bad = [&] {
    return InvalidArgument("'" + std::string(text) +
                           "' is not a duration (e.g. 30s, 5m, 1h30m, 2d, 250ms)");
  };
  if (text.empty()) return bad();
  std::int64_t total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::int64_t n = 0;
    auto [p, ec] = std::from_chars(text.data() + i, text.data() + text.size(), n);
    if (ec != std::errc() || n < 0) return bad();
    i = static_cast<std::size_t>(p - text.data());
    std::int64_t unit = 1;
    if (i == text.size()) {
      if (total != 0) return bad();  // "1h30" is ambiguous
    } else if (text.substr(i, 2) == "ms") {
      i += 2;
    } else {
      switch (text[i++]) {
        case 's': unit = 1000; break;
        case 'm': unit = 60'000; break;
        case 'h': unit = 3'600'000; break;
        case 'd': unit = 86'400'000; break;
        default: return bad();
      }
    }
    if (n > (std::int64_t{1} << 52) / unit) return bad();
    total += n * unit;
  }
  return total;
}

namespace {

void PrintSchedule(const Schedule& s) {
  const ScheduleSpec& p = s.spec;
  std::printf("id:         %s\n", p.id.c_str());
  if (!p.name.empty()) std::printf("name:       %s\n", p.name.c_str());
  if (!p.cron.empty()) {
    std::printf("cron:       %s (%s)\n", p.cron.c_str(), p.timezone.c_str());
  } else {
    std::printf("every:      %lld ms\n", static_cast<long long>(p.interval_ms));
  }
  std::printf("task:       %s on queue %s\n", p.task.type.c_str(), p.task.queue.c_str());
  std::printf("policies:   misfire %s, overlap %s%s\n", std::string(MisfirePolicyName(p.misfire)).c_str(),
              std::string(OverlapPolicyName(p.overlap)).c_str(),
              p.jitter_ms ? (", jitter " + std::to_string(p.jitter_ms) + " ms").c_str() : "");
  if (p.start_at || p.end_at) {
    std::printf("window:     %s .. %s\n", CliTime(p.start_at.value_or(0)).c_str(),
                CliTime(p.end_at.value_or(0)).c_str());
  }
  std::printf("state:      %s\n", p.paused ? "paused" : "active");
  std::printf("fired:      %lld (skipped %lld), last %s, task %s\n",
              static_cast<long long>(s.fired), static_cast<long long>(s.skipped),
              CliTime(s.last_fired_at).c_str(), s.last_task.empty() ? "-" : s.last_task.c_str());
  if (s.buffered_tick) std::printf("buffered:   the tick of %s\n", CliTime(s.buffered_tick).c_str());
  for (std::size_t i = 0; i < s.next_fire_times.size(); ++i) {
    std::printf("%s%s\n", i == 0 ? "next:       " : "            ",
                CliTime(s.next_fire_times[i]).c_str());
  }
}

}  // namespace

std::function<int()> AddScheduleCommand(CLI::App* app, CliCommon* common) {
  struct Flags {
    ScheduleSpec spec;
    std::string file, every, jitter, start, end, misfire, overlap, payload, patch, id, cursor;
    bool yaml = false;
    std::size_t next = 5, limit = 100;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app->add_subcommand("schedule", "Add, show, list, pause, resume or remove schedules");
  AddCommonFlags(cmd, common);
  CLI::App* add = cmd->add_subcommand("add", "Create a schedule from flags or from a JSON/YAML file");
  add->add_option("--file", f->file, "the body of POST /v1/schedules ('-': stdin; *.yaml: YAML)");
  add->add_flag("--yaml", f->yaml, "read --file as YAML whatever its name");
  add->add_option("--id", f->spec.id, "its id (default: one is made)");
  add->add_option("--name", f->spec.name, "free text");
  add->add_option("--cron", f->spec.cron, "5 or 6 fields, e.g. '0 2 * * *'");
  add->add_option("--tz", f->spec.timezone, "IANA zone of --cron")->capture_default_str();
  add->add_option("--every", f->every, "a fixed interval instead of --cron: 30s, 5m, 1h...");
  add->add_option("--type", f->spec.task.type, "the task's type");
  add->add_option("--queue", f->spec.task.queue, "the task's queue")->capture_default_str();
  add->add_option("--payload", f->payload, "the task's payload (JSON)");
  add->add_option("--misfire", f->misfire, "skip, once (default) or all");
  add->add_option("--overlap", f->overlap, "allow (default), skip, buffer_one or cancel_previous");
  add->add_option("--jitter", f->jitter, "move each fire later by up to this: 10s...");
  add->add_option("--start", f->start, "no tick before (RFC 3339)");
  add->add_option("--end", f->end, "no tick after (RFC 3339)");
  add->add_flag("--paused", f->spec.paused, "create it paused");
  CLI::App* list = cmd->add_subcommand("list", "List schedules by id");
  list->add_option("--limit", f->limit, "at most this many")->capture_default_str();
  list->add_option("--cursor", f->cursor, "continue after this cursor");
  CLI::App* get = cmd->add_subcommand("get", "Show a schedule and its next fire times");
  get->add_option("--next", f->next, "how many fire times")->capture_default_str();
  CLI::App* pause = cmd->add_subcommand("pause", "Stop a schedule firing");
  CLI::App* resume = cmd->add_subcommand("resume", "Fire again; missed ticks go by its misfire policy");
  CLI::App* rm = cmd->add_subcommand("rm", "Delete a schedule (its tasks stay)");
  CLI::App* patch = cmd->add_subcommand("patch", "Change fields: dray schedule patch ID '{\"cron\":\"0 3 * * *\"}'");
  for (CLI::App* c : {get, pause, resume, rm, patch}) c->add_option("id", f->id, "schedule id")->required();
  patch->add_option("json", f->patch, "the PATCH body")->required();
  for (CLI::App* c : {add, list, get, pause, resume, rm, patch}) AddCommonFlags(c, common);
  cmd->require_subcommand(1);

  return [=]() -> int {
    if (!cmd->parsed()) return -1;
    auto client = Connect(*common);
    auto show = [&](const StatusOr<Schedule>& s) -> int {
      if (!s.ok()) return Fail(s.status());
      if (common->json_out) {
        std::printf("%s\n", JsonText(EncodeSchedule(*s)).c_str());
      } else {
        PrintSchedule(*s);
      }
      return 0;
    };
    if (add->parsed()) {
      if (!f->file.empty()) {
        auto text = ReadJsonBody(f->file, f->yaml);
        if (!text.ok()) return Fail(text.status());
        auto body = client->Call("POST", "/v1/schedules", *text);
        if (!body.ok()) return Fail(body.status());
        return show(DecodeSchedule(json::parse(*body)));
      }
      ScheduleSpec& spec = f->spec;
      if (spec.task.type.empty()) return Fail(InvalidArgument("--type is required (or --file)"));
      if (!f->every.empty()) {
        auto ms = ParseDuration(f->every);
        if (!ms.ok()) return Fail(ms.status());
        spec.interval_ms = *ms;
      }
      if (!f->jitter.empty()) {
        auto ms = ParseDuration(f->jitter);
        if (!ms.ok()) return Fail(ms.status());
        spec.jitter_ms = *ms;
      }
      if (!f->payload.empty()) {
        auto p = ParseJson(f->payload);
        if (!p.ok()) return Fail(InvalidArgument("--payload: " + p.status().message()));
        spec.task.payload = JsonText(*p);
      }
      if (!f->misfire.empty()) {
        auto m = ParseMisfirePolicy(f->misfire);
        if (!m) return Fail(InvalidArgument("--misfire must be skip, once or all"));
        spec.misfire = *m;
      }
      if (!f->overlap.empty()) {
        auto o = ParseOverlapPolicy(f->overlap);
        if (!o) return Fail(InvalidArgument("--overlap must be allow, skip, buffer_one or cancel_previous"));
        spec.overlap = *o;
      }
      for (auto [text, field] : {std::pair{&f->start, &spec.start_at}, std::pair{&f->end, &spec.end_at}}) {
        if (text->empty()) continue;
        auto t = ParseRfc3339(*text);
        if (!t) return Fail(InvalidArgument("'" + *text + "' is not an RFC 3339 time"));
        *field = *t;
      }
      return show(client->CreateSchedule(spec));
    }
    if (get->parsed()) return show(client->GetSchedule(f->id, f->next));
    if (pause->parsed()) return show(client->PauseSchedule(f->id));
    if (resume->parsed()) return show(client->ResumeSchedule(f->id));
    if (patch->parsed()) return show(client->PatchSchedule(f->id, f->patch));
    if (rm->parsed()) {
      Status s = client->DeleteSchedule(f->id);
      if (!s.ok()) return Fail(s);
      std::printf("%s deleted\n", f->id.c_str());
      return 0;
    }
    auto page = client->ListSchedules(f->limit, f->cursor);
    if (!page.ok()) return Fail(page.status());
    if (common->json_out) {
      json::array items;
      for (const Schedule& s : page->schedules) items.push_back(EncodeSchedule(s));
      std::printf("%s\n", JsonText(items).c_str());
      return 0;
    }
    std::printf("%-24s  %-26s  %-7s  %7s  %-24s  %s\n", "ID", "WHEN", "STATE", "FIRED", "NEXT", "TASK");
    for (const Schedule& s : page->schedules) {
      const std::string when = !s.spec.cron.empty() ? s.spec.cron + " " + s.spec.timezone
                                                    : "every " + std::to_string(s.spec.interval_ms) + " ms";
      std::printf("%-24s  %-26s  %-7s  %7lld  %-24s  %s\n", s.spec.id.c_str(), when.c_str(),
                  s.spec.paused ? "paused" : "active", static_cast<long long>(s.fired),
                  s.next_fire_times.empty() ? "-" : CliTime(s.next_fire_times[0]).c_str(),
                  s.spec.task.type.c_str());
    }
    if (!page->next_cursor.empty()) std::printf("more: --cursor %s\n", page->next_cursor.c_str());
    return 0;
  };
}

}  // namespace dray

#include "commands.hpp"
#include "common.hpp"

#include "campaign/campaign.hpp"
#include "io/text_file.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace caustic {

namespace {
// The MPI launcher of the tree this binary belongs to (build tree or install prefix; the
// relative path is fixed at configure time, see the top-level CMakeLists.txt).
std::string launcherPath(const std::string& self) {
  return (std::filesystem::path(self).parent_path() / CAUSTIC_LAUNCHER_RELATIVE).lexically_normal().string();
}
} // namespace

int runCampaignCommand(RunContext& ctx, const CampaignCommandOptions& opt) {
  if (!ctx.root())
    return 0; // campaign bookkeeping is serial
  if (opt.action == "make") {
    const CampaignConfig cfg = loadCampaignConfig(opt.target);
    const std::string manifest = makeCampaign(cfg, selfPath(), launcherPath(selfPath()));
    std::printf("campaign: %d members (%s design over %zu parameter(s)) in %s\n", cfg.members,
                cfg.design.c_str(), cfg.parameters.size(), cfg.directory.c_str());
    std::printf("wrote %s, members/NNNN/params.toml, campaign.sbatch\n", manifest.c_str());
    std::printf("submit: caustic campaign submit %s\n", cfg.directory.c_str());
    return 0;
  }
  const auto status = campaignStatus(opt.target);
  if (opt.action == "status") {
    int counts[4] = {0, 0, 0, 0};
    for (const auto& s : status) {
      ++counts[static_cast<int>(s.state)];
      std::printf("%s  %-11s %s\n", memberName(s.index).c_str(), stateName(s.state).c_str(),
                  s.detail.c_str());
    }
    std::printf("done %d, running %d, failed %d, not started %d (of %zu)\n", counts[2], counts[1],
                counts[3], counts[0], status.size());
    return counts[2] == static_cast<int>(status.size()) ? 0 : 1;
  }
  // submit: every member not done (and not queued or running, unless --all).
  std::string list;
  std::vector<int> chosen;
  for (const auto& s : status)
    if (s.state != MemberState::Done && (opt.all || s.state != MemberState::Running)) {
      list += (list.empty() ? "" : ",") + std::to_string(s.index);
      chosen.push_back(s.index);
    }
  if (chosen.empty()) {
    std::printf("campaign %s: nothing to submit\n", opt.target.c_str());
    return 0;
  }
  const std::string script = (std::filesystem::path(opt.target) / "campaign.sbatch").string();
  int max_parallel = 0; // array tasks at once (campaign.slurm.max_parallel)
  {
    const std::string manifest = (std::filesystem::path(opt.target) / "manifest.json").string();
    const auto man =
        nlohmann::json::parse(readTextFile(manifest, "campaign manifest"), nullptr, false);
    max_parallel = man.is_object() ? man.value("max_parallel", 0) : 0;
  }
  const std::string cmd = "sbatch --parsable --array=" + list +
                          (max_parallel > 0 ? "%" + std::to_string(max_parallel) : "") + " " +
                          script + " 2>&1";
  for (int i : chosen)
    std::ofstream(std::filesystem::path(opt.target) / "members" / memberName(i) / "status")
        << "queued\n";
  std::FILE* p = popen(cmd.c_str(), "r");
  if (!p)
    throw ParamError("campaign submit: cannot run sbatch");
  std::string out;
  char buf[256];
  while (std::fgets(buf, sizeof buf, p))
    out += buf;
  const int rc = pclose(p);
  if (rc != 0) {
    for (int i : chosen) // not queued after all
      std::filesystem::remove(std::filesystem::path(opt.target) / "members" / memberName(i) /
                              "status");
    throw ParamError("campaign submit: `" + cmd + "` failed: " + out);
  }
  std::printf("submitted members %s as array job %s", list.c_str(), out.c_str());
  return 0;
}

} // namespace caustic

#include "campaign/campaign.hpp"

#include "io/atomic_file.hpp"
#include "io/format.hpp"
#include "io/text_file.hpp"
#include "io/toml_section.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>

namespace caustic {

using namespace tomlsec;

namespace {} // namespace

std::string memberName(int index) {
  return format("%04d", index);
}

CampaignConfig loadCampaignConfig(const std::string& path) {
  const std::string text = readTextFile(path, "campaign file");
  toml::table root = parseTomlText(text, path);
  for (auto&& [k, v] : root) {
    const std::string ks(k.str());
    if (ks != "campaign" && ks != "parameters")
      throw ParamError("[" + ks +
                       "]: unknown section; allowed: [campaign], [campaign.slurm], "
                       "[parameters]");
  }
  CampaignConfig c;
  c.source = path;
  const auto base_dir = std::filesystem::path(path).parent_path();
  {
    Section s(&root, "campaign");
    const auto base = s.string("base");
    if (!base)
      throw ParamError("campaign.base: missing; expected the parameter file of the members");
    std::filesystem::path b(*base);
    if (b.is_relative())
      b = base_dir / b;
    if (!std::filesystem::is_regular_file(b))
      throw ParamError("campaign.base = \"" + *base + "\": no such file (looked for " + b.string() +
                       ")");
    c.base_file = b.string();
    const auto m = s.integer("members", std::nullopt, "an integer in [1, 100000]");
    if (m < 1 || m > 100000)
      throw ParamError("campaign.members = " + std::to_string(m) +
                       ": out of range; allowed: [1, 100000]");
    c.members = static_cast<int>(m);
    c.design = s.choice("design", "lhs", {"lhs", "sobol"});
    const auto seed = s.integer("seed", 1, "an integer >= 0");
    requireRange(seed >= 0, s.key("seed"), double(seed), ">= 0");
    c.seed = static_cast<std::uint64_t>(seed);
    c.vary_seed = s.boolean("vary_seed", true);
    c.directory = s.string("directory").value_or("output/campaign");
    if (c.directory.empty())
      throw ParamError("campaign.directory = \"\": expected a directory path");
    c.directory = std::filesystem::absolute(c.directory).lexically_normal().string();
    const auto r = s.integer("ranks", 1, "an integer in [1, 100000]");
    if (r < 1 || r > 100000)
      throw ParamError("campaign.ranks = " + std::to_string(r) + ": out of range; allowed: >= 1");
    c.ranks = static_cast<int>(r);
    const auto ce = s.integer("checkpoint_every", 0, "an integer >= 0");
    if (ce < 0)
      throw ParamError("campaign.checkpoint_every = " + std::to_string(ce) +
                       ": out of range; allowed: >= 0");
    c.checkpoint_every = static_cast<int>(ce);
    // [campaign.slurm]
    s.find("slurm");
    if (toml::node* sl = root["campaign"].as_table()->get("slurm")) {
      if (!sl->is_table())
        throw ParamError("[campaign.slurm]: expected a table");
      Section ss(root["campaign"].as_table(), "slurm", true, "campaign.");
      c.slurm_time = ss.string("time").value_or("00:30:00");
      c.slurm_partition = ss.string("partition").value_or("");
      c.slurm_account = ss.string("account").value_or("");
      const auto mp = ss.integer("max_parallel", 0, "an integer >= 0 (0: no limit)");
      if (mp < 0)
        throw ParamError("campaign.slurm.max_parallel = " + std::to_string(mp) +
                         ": out of range; allowed: >= 0");
      c.slurm_max_parallel = static_cast<int>(mp);
      ss.finish();
    }
    s.finish();
  }
  if (toml::node* p = root.get("parameters")) {
    if (!p->is_table())
      throw ParamError("[parameters]: expected a table of \"section.key\" = [low, high]");
    for (auto&& [k, v] : *p->as_table()) {
      const std::string key(k.str());
      const auto* a = v.as_array();
      if (!a || a->size() != 2 || !(*a)[0].is_number() || !(*a)[1].is_number())
        throw ParamError("parameters.\"" + key + "\" = " + show(v) +
                         ": expected [low, high] (numbers)");
      const double lo = (*a)[0].value<double>().value(), hi = (*a)[1].value<double>().value();
      if (!(lo < hi))
        throw ParamError("parameters.\"" + key + "\" = " + show(v) + ": expected low < high");
      if (key.find('.') == std::string::npos)
        throw ParamError("parameters.\"" + key + "\": expected \"section.key\"");
      c.parameters.push_back({key, {lo, hi}});
    }
  }
  if (c.design == "sobol" && c.parameters.size() > 10)
    throw ParamError("campaign.design = \"sobol\": at most 10 parameters (" +
                     std::to_string(c.parameters.size()) + " given); use \"lhs\"");
  return c;
}

std::vector<std::vector<double>> latinHypercube(int n, int dims, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<std::vector<double>> pts(n, std::vector<double>(dims));
  std::vector<int> perm(n);
  for (int d = 0; d < dims; ++d) {
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int i = 0; i < n; ++i)
      pts[i][d] = (perm[i] + u(rng)) / n;
  }
  return pts;
}

std::vector<std::vector<double>> sobolPoints(int n, int dims) {
  // Primitive polynomials (degree s, coefficients a) and initial direction numbers m of
  // dimensions 2..10 (Joe & Kuo 2008); dimension 1 is the van der Corput sequence.
  struct Dim {
    int s, a;
    std::vector<unsigned> m;
  };
  static const std::vector<Dim> table = {{1, 0, {1}},
                                         {2, 1, {1, 3}},
                                         {3, 1, {1, 3, 1}},
                                         {3, 2, {1, 1, 1}},
                                         {4, 1, {1, 1, 3, 3}},
                                         {4, 4, {1, 3, 5, 13}},
                                         {5, 2, {1, 1, 5, 5, 17}},
                                         {5, 4, {1, 1, 5, 5, 5}},
                                         {5, 7, {1, 1, 7, 11, 19}}};
  if (dims > 10)
    throw std::invalid_argument("sobolPoints: at most 10 dimensions");
  constexpr int B = 32;
  std::vector<std::vector<std::uint32_t>> v(dims, std::vector<std::uint32_t>(B + 1));
  for (int i = 1; i <= B; ++i)
    v[0][i] = std::uint32_t(1) << (B - i);
  for (int d = 1; d < dims; ++d) {
    const Dim& t = table[d - 1];
    for (int i = 1; i <= t.s; ++i)
      v[d][i] = t.m[i - 1] << (B - i);
    for (int i = t.s + 1; i <= B; ++i) {
      std::uint32_t x = v[d][i - t.s] ^ (v[d][i - t.s] >> t.s);
      for (int k = 1; k < t.s; ++k)
        x ^= ((t.a >> (t.s - 1 - k)) & 1u) * v[d][i - k];
      v[d][i] = x;
    }
  }
  std::vector<std::vector<double>> pts(n, std::vector<double>(dims));
  std::vector<std::uint32_t> x(dims, 0);
  for (int i = 0; i < n; ++i) {
    for (int d = 0; d < dims; ++d)
      pts[i][d] = x[d] / 4294967296.0;
    // Gray-code order: flip the direction number of the lowest zero bit of i.
    int c = 1;
    for (unsigned j = static_cast<unsigned>(i); j & 1u; j >>= 1)
      ++c;
    for (int d = 0; d < dims; ++d)
      x[d] ^= v[d][c];
  }
  return pts;
}

std::string makeCampaign(const CampaignConfig& cfg, const std::string& caustic_binary,
                         const std::string& launcher) {
  namespace fs = std::filesystem;
  const fs::path dir(cfg.directory);
  const std::string manifest = (dir / "manifest.json").string();
  if (fs::exists(manifest))
    throw ParamError("campaign.directory = \"" + cfg.directory +
                     "\" already holds a campaign (manifest.json); choose another directory");
  // The job script runs these two by absolute path: both must exist before anything is written.
  const auto require = [](const char* what, const std::string& file) {
    if (!fs::is_regular_file(file))
      throw ParamError(std::string("campaign: the ") + what + " " + file +
                       " does not exist (build the project, or install it with cmake --install)");
  };
  require("caustic binary", caustic_binary);
  require("MPI launcher", launcher);
  const std::string binary_path = fs::canonical(caustic_binary).string();
  const std::string launcher_path = fs::canonical(launcher).string();
  const int dims = static_cast<int>(cfg.parameters.size());
  const auto unit = cfg.design == "sobol" ? sobolPoints(cfg.members, dims)
                                          : latinHypercube(cfg.members, dims, cfg.seed);
  const std::string base_text = readTextFile(cfg.base_file, "campaign.base");
  const Params base = parseParams(base_text, {}, cfg.ranks,
                                  fs::path(cfg.base_file).parent_path().string(), cfg.base_file);
  nlohmann::json man;
  man["source"] = cfg.source;
  man["base"] = cfg.base_file;
  man["design"] = cfg.design;
  man["seed"] = cfg.seed;
  man["ranks"] = cfg.ranks;
  man["max_parallel"] = cfg.slurm_max_parallel;
  man["members"] = nlohmann::json::array();
  std::vector<std::string> texts;
  for (int i = 0; i < cfg.members; ++i) {
    const fs::path mdir = dir / "members" / memberName(i);
    std::vector<std::string> ov;
    nlohmann::json values = nlohmann::json::object();
    for (int d = 0; d < dims; ++d) {
      const auto& [key, r] = cfg.parameters[d];
      const double v = r.first + unit[i][d] * (r.second - r.first);
      const std::string text = formatNumber(v); // the manifest holds the value as written
      ov.push_back(key + "=" + text);
      values[key] = std::stod(text);
    }
    if (cfg.vary_seed)
      ov.push_back("simulation.seed=" + std::to_string(base.simulation.seed + i));
    ov.push_back("output.directory=\"" + (mdir / "output").string() + "\"");
    ov.push_back("checkpoint.directory=\"" + (mdir / "checkpoints").string() + "\"");
    if (cfg.checkpoint_every > 0)
      ov.push_back("checkpoint.every_steps=" + std::to_string(cfg.checkpoint_every));
    // Validated as the run will be; the member's file holds the effective parameters.
    Params p;
    try {
      p = parseParams(base_text, ov, cfg.ranks, fs::path(cfg.base_file).parent_path().string(),
                      cfg.base_file);
    } catch (const ParamError& e) {
      throw ParamError("campaign member " + memberName(i) + ": " + e.what());
    }
    texts.push_back(p.toml);
    man["members"].push_back({{"index", i},
                              {"values", values},
                              {"simulation.seed", p.simulation.seed},
                              {"params", (mdir / "params.toml").string()},
                              {"output", (mdir / "output").string()},
                              {"parameter_hash", p.hash()}});
  }
  for (int i = 0; i < cfg.members; ++i) {
    const fs::path mdir = dir / "members" / memberName(i);
    makeDirectories(mdir.string());
    writeTextFile((mdir / "params.toml").string(), texts[i] + "\n");
  }
  makeDirectories((dir / "logs").string());
  // The array job.
  std::ostringstream sb;
  sb << "#!/bin/bash\n"
     << "# Caustic campaign array job, written by `caustic campaign make` from " << cfg.source
     << ".\n# Submit with `caustic campaign submit " << cfg.directory
     << "` (only members not done).\n"
     << "#SBATCH --job-name=caustic-campaign\n"
     << "#SBATCH --ntasks=" << cfg.ranks << "\n"
     << "#SBATCH --time=" << cfg.slurm_time << "\n"
     << "#SBATCH --output=" << (dir / "logs" / "member_%a.log").string() << "\n"
     << "#SBATCH --signal=USR1@60\n"; // checkpoint a minute before the time limit
  if (!cfg.slurm_partition.empty())
    sb << "#SBATCH --partition=" << cfg.slurm_partition << "\n";
  if (!cfg.slurm_account.empty())
    sb << "#SBATCH --account=" << cfg.slurm_account << "\n";
  sb << "set -u\n"
     << "member=$(printf '%04d' \"${SLURM_ARRAY_TASK_ID:?not an array task}\")\n"
     << "cd \"" << (dir / "members").string() << "/$member\" || exit 1\n"
     << "echo running > status\n"
     << "# Continue from the member's checkpoint if it has one; otherwise start afresh.\n"
     << "if ls checkpoints/checkpoint_step*.h5 > /dev/null 2>&1; then mode=--resume; else "
        "mode=--overwrite; fi\n"
     << "bash \"" << launcher_path << "\" " << cfg.ranks << " \"" << binary_path
     << "\" run params.toml $mode\n"
     << "rc=$?\n"
     << "if [ $rc -eq 0 ]; then echo done > status; else echo \"failed $rc\" > status; fi\n"
     << "exit $rc\n";
  writeTextFile((dir / "campaign.sbatch").string(), sb.str());
  fs::permissions(dir / "campaign.sbatch", fs::perms::owner_exec, fs::perm_options::add);
  writeTextFile(manifest, man.dump(2) + "\n");
  return manifest;
}

std::string stateName(MemberState s) {
  switch (s) {
  case MemberState::NotStarted:
    return "not started";
  case MemberState::Running:
    return "running";
  case MemberState::Done:
    return "done";
  case MemberState::Failed:
    return "failed";
  }
  return "?";
}

std::vector<MemberStatus> campaignStatus(const std::string& directory) {
  namespace fs = std::filesystem;
  const std::string manifest = (fs::path(directory) / "manifest.json").string();
  std::ifstream in(manifest);
  if (!in)
    throw ParamError("campaign " + directory + ": no manifest.json (not a campaign directory)");
  nlohmann::json man;
  try {
    in >> man;
  } catch (const nlohmann::json::exception& e) {
    throw ParamError("campaign " + manifest + ": invalid JSON: " + e.what());
  }
  std::vector<MemberStatus> out;
  for (const auto& m : man.at("members")) {
    MemberStatus st;
    st.index = m.at("index").get<int>();
    const fs::path mdir = fs::path(m.at("params").get<std::string>()).parent_path();
    std::ifstream sf(mdir / "status");
    std::string word, rest;
    if (sf >> word) {
      std::getline(sf, rest);
      if (word == "done") {
        // Trust, but verify: the run's own summary must say it reached the end.
        std::ifstream js(fs::path(m.at("output").get<std::string>()) / "run_summary.json");
        nlohmann::json s;
        bool ok = false;
        try {
          js >> s;
          ok = !s.value("interrupted", true) &&
               s.value("steps_done", -1) == s.value("steps_total", -2);
        } catch (const nlohmann::json::exception&) {
        }
        st.state = ok ? MemberState::Done : MemberState::Failed;
        st.detail = ok ? "" : "status says done but run_summary.json does not";
      } else if (word == "running" || word == "queued") {
        st.state = MemberState::Running;
        st.detail = word;
      } else {
        st.state = MemberState::Failed;
        st.detail = "exit code" + rest;
      }
    }
    out.push_back(st);
  }
  return out;
}

} // namespace caustic

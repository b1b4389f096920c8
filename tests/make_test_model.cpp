// Writes a small TorchScript model for the end-to-end emulator test: a periodic-ready 3x3x3 box
// filter ('same' padding, receptive-field radius 1) with its metadata record.
// usage: make_test_model OUT.pt CELL_SIZE [INPUT_CHANNEL OUTPUT_CHANNEL]
#include "emulators/runtime/metadata.hpp"

#include <torch/script.h>

#include <cstdio>
#include <fstream>
#include <string>

int main(int argc, char** argv) {
  if (argc != 3 && argc != 5) {
    std::fprintf(stderr, "usage: %s OUT.pt CELL_SIZE [INPUT_CHANNEL OUTPUT_CHANNEL]\n", argv[0]);
    return 2;
  }
  const std::string in_name = argc == 5 ? argv[3] : "density",
                    out_name = argc == 5 ? argv[4] : "density_smooth";
  const std::string out = argv[1];
  const double cell = std::stod(argv[2]);
  torch::jit::Module m("BoxFilter");
  m.register_parameter("w", torch::full({1, 1, 3, 3, 3}, 1.0 / 27.0), false);
  m.define(R"(
def forward(self, x):
    return torch.conv3d(x, self.w, None, [1, 1, 1], [1, 1, 1])
)");
  m.save(out);
  nlohmann::json meta = {{"kind", "box_filter"},
                         {"version", "1"},
                         {"inputs", {{{"name", in_name}, {"mean", 0.0}, {"std", 1.0}}}},
                         {"outputs", {{{"name", out_name}, {"mean", 0.0}, {"std", 1.0}}}},
                         {"receptive_field", 1},
                         {"cell_size", {{"value", cell}, {"rtol", 0.01}}},
                         {"redshift", {0.0, 1.0}},
                         {"cosmology", {{"Omega_m", {0.2, 0.4}}}},
                         {"provenance", "tests/make_test_model.cpp"}};
  caustic::ModelMetadata::fromJson(meta, out); // the record must be valid
  std::ofstream(out.substr(0, out.size() - 3) + ".json") << meta.dump(2) << "\n";
  return 0;
}

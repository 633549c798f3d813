// Start-up time of a command, as scripts that call the CLI in loops feel it: `circuitscope
// --version` and a demo forward pass through the launcher (app/launcher), against the reference,
// the program re-executing itself to set the BLAS/OpenMP variables (what every command did
// before the launcher), and against the floor, the program started once with the variables
// already set. Median of N runs each, interleaved, in this process on this machine.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace {

// Runs argv with `env` (NAME=VALUE entries; entries named "-NAME" are removed), output discarded;
// returns wall seconds.
double timedRun(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
    std::vector<std::string> vars;
    for (char** e = environ; *e; ++e) {
        const std::string v = *e;
        bool drop = false;
        for (const auto& x : env) {
            const std::string name = x[0] == '-' ? x.substr(1) : x.substr(0, x.find('='));
            if (v.compare(0, name.size() + 1, name + "=") == 0) drop = true;
        }
        if (!drop) vars.push_back(v);
    }
    for (const auto& x : env)
        if (x[0] != '-') vars.push_back(x);
    std::vector<char*> cargv, cenv;
    for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    for (const auto& v : vars) cenv.push_back(const_cast<char*>(v.c_str()));
    cenv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    const auto t0 = std::chrono::steady_clock::now();
    pid_t pid = 0;
    if (posix_spawn(&pid, cargv[0], &fa, nullptr, cargv.data(), cenv.data()) != 0) {
        std::fprintf(stderr, "bench_startup: cannot start %s\n", cargv[0]);
        std::exit(1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    posix_spawn_file_actions_destroy(&fa);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::fprintf(stderr, "bench_startup: %s failed\n", argv[1].c_str());
        std::exit(1);
    }
    return s;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    const int runs = argc > 1 ? std::atoi(argv[1]) : 9;
    const std::string launcher = CS_CLI_PATH;
    const std::string program = launcher.substr(0, launcher.rfind('/')) + "/circuitscope-main";
    // The variables a user might have set would hide the difference; start from none.
    const std::vector<std::string> clean = {"-CIRCUITSCOPE_KEEP_ENV", "-OMP_WAIT_POLICY", "-OPENBLAS_CORETYPE"};
    std::vector<std::string> kept = clean;
    // The floor: what the launcher would have chosen, given up front. OPENBLAS_CORETYPE only
    // matters on CPUs OpenBLAS 0.3.21 does not know, and is left to detection here.
    kept.insert(kept.end(), {"CIRCUITSCOPE_KEEP_ENV=1", "OMP_WAIT_POLICY=passive"});

    const std::vector<std::pair<std::string, std::vector<std::string>>> commands = {
        {"--version", {"--version"}},
        {"forward (demo, 4 tokens)", {"forward", "--model", "demo", "--prompt", "Once upon a time", "--json"}},
    };
    std::printf("start-up, median of %d runs (seconds)\n", runs);
    std::printf("%-26s %10s %10s %10s %12s %12s\n", "command", "launcher", "re-exec", "floor", "vs re-exec",
                "vs floor");
    for (const auto& [label, args] : commands) {
        std::vector<double> viaLauncher, reexec, floor;
        std::vector<std::string> a1 = {launcher}, a2 = {program};
        a1.insert(a1.end(), args.begin(), args.end());
        a2.insert(a2.end(), args.begin(), args.end());
        timedRun(a1, clean);  // warm the page cache
        for (int i = 0; i < runs; ++i) {
            viaLauncher.push_back(timedRun(a1, clean));
            reexec.push_back(timedRun(a2, clean));
            floor.push_back(timedRun(a2, kept));
        }
        const double l = median(viaLauncher), r = median(reexec), f = median(floor);
        std::printf("%-26s %10.3f %10.3f %10.3f %11.2fx %11.2fx\n", label.c_str(), l, r, f, l / r, l / f);
    }
    std::printf("(ratios: launcher time / reference time; below 1 is faster)\n");
    return 0;
}

#include "io/NpzReader.h"

#include "util/Error.h"

#include <ATen/ATen.h>
#include <zip.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sys/stat.h>

namespace cs {

namespace {

zip_t* asZip(void* z) { return static_cast<zip_t*>(z); }

struct NpyHeader {
    std::string descr;
    bool fortranOrder = false;
    std::vector<int64_t> shape;
    size_t dataStart = 0;
};

// The header is a Python dict literal written by numpy; a full Python parser is not needed, but the
// value of each of the three keys must be found exactly.
size_t valueStart(const std::string& dict, const std::string& key, const std::string& where) {
    size_t p = dict.find("'" + key + "'");
    if (p == std::string::npos) p = dict.find("\"" + key + "\"");
    if (p == std::string::npos) throw Error(where + ": .npy header has no '" + key + "' entry");
    p = dict.find(':', p);
    if (p == std::string::npos) throw Error(where + ": .npy header entry '" + key + "' has no value");
    ++p;
    while (p < dict.size() && dict[p] == ' ') ++p;
    return p;
}

NpyHeader parseHeader(const std::string& bytes, const std::string& where) {
    static const char magic[] = "\x93NUMPY";
    if (bytes.size() < 10 || std::memcmp(bytes.data(), magic, 6) != 0)
        throw Error(where + ": not a .npy array (bad magic; expected \\x93NUMPY)");
    const int major = static_cast<unsigned char>(bytes[6]);
    size_t headerLen = 0, pre = 0;
    auto byteAt = [&](size_t i) { return static_cast<size_t>(static_cast<unsigned char>(bytes[i])); };
    if (major == 1) {
        headerLen = byteAt(8) | (byteAt(9) << 8);
        pre = 10;
    } else if (major == 2 || major == 3) {
        if (bytes.size() < 12) throw Error(where + ": .npy header is truncated");
        headerLen = byteAt(8) | (byteAt(9) << 8) | (byteAt(10) << 16) | (byteAt(11) << 24);
        pre = 12;
    } else {
        throw Error(where + ": unsupported .npy format version " + std::to_string(major));
    }
    if (pre + headerLen > bytes.size()) throw Error(where + ": .npy header runs past the end of the array");
    const std::string dict = bytes.substr(pre, headerLen);

    NpyHeader h;
    h.dataStart = pre + headerLen;
    size_t p = valueStart(dict, "descr", where);
    if (p >= dict.size() || (dict[p] != '\'' && dict[p] != '"'))
        throw Error(where + ": .npy 'descr' is not a plain dtype string (structured arrays are not supported)");
    const size_t close = dict.find(dict[p], p + 1);
    if (close == std::string::npos) throw Error(where + ": .npy 'descr' is not terminated");
    h.descr = dict.substr(p + 1, close - p - 1);

    p = valueStart(dict, "fortran_order", where);
    if (dict.compare(p, 4, "True") == 0) h.fortranOrder = true;
    else if (dict.compare(p, 5, "False") != 0) throw Error(where + ": .npy 'fortran_order' is neither True nor False");

    p = valueStart(dict, "shape", where);
    const size_t end = dict.find(')', p);
    if (p >= dict.size() || dict[p] != '(' || end == std::string::npos)
        throw Error(where + ": .npy 'shape' is not a tuple");
    std::string dims = dict.substr(p + 1, end - p - 1);
    size_t i = 0;
    while (i < dims.size()) {
        while (i < dims.size() && (dims[i] == ' ' || dims[i] == ',')) ++i;
        if (i >= dims.size()) break;
        size_t j = i;
        while (j < dims.size() && dims[j] >= '0' && dims[j] <= '9') ++j;
        if (j == i) throw Error(where + ": .npy 'shape' has a non-integer entry");
        if (j - i > 18) throw Error(where + ": .npy 'shape' entry " + dims.substr(i, j - i) + " is too large");
        h.shape.push_back(std::stoll(dims.substr(i, j - i)));
        i = j;
        if (i < dims.size() && dims[i] == 'L') ++i;  // Python 2 long suffix
    }
    return h;
}

// numpy descr ('<f4', '|u1', ...) -> LibTorch type. Big-endian data and types LibTorch lacks are refused.
at::ScalarType scalarTypeFor(const std::string& descr, const std::string& where) {
    auto refuse = [&](const std::string& why) -> at::ScalarType {
        throw Error(where + ": unsupported dtype '" + descr + "'" + why);
    };
    if (descr.size() < 3) return refuse("");
    const char order = descr[0];
    const std::string kind = descr.substr(1);
    const bool single = kind == "i1" || kind == "u1" || kind == "b1";
    if (order == '>' && !single) return refuse(" (big-endian data)");
    if (order != '<' && order != '|' && order != '=' && order != '>') return refuse("");
    if (kind == "f2") return at::kHalf;
    if (kind == "f4") return at::kFloat;
    if (kind == "f8") return at::kDouble;
    if (kind == "i1") return at::kChar;
    if (kind == "i2") return at::kShort;
    if (kind == "i4") return at::kInt;
    if (kind == "i8") return at::kLong;
    if (kind == "u1") return at::kByte;
    if (kind == "b1") return at::kBool;
    return refuse(" (supported: float16/32/64, int8/16/32/64, uint8, bool)");
}

}  // namespace

at::Tensor parseNpy(const std::string& bytes, const std::string& where) {
    const NpyHeader h = parseHeader(bytes, where);
    if (h.fortranOrder)
        throw Error(where + ": stored in Fortran (column-major) order, which is not supported; "
                    "save it with numpy.ascontiguousarray");
    const at::ScalarType type = scalarTypeFor(h.descr, where);
    // Multiplied with an overflow check: a huge shape could otherwise wrap to the stored size.
    size_t need = at::elementSize(type);
    for (int64_t d : h.shape)
        if (__builtin_mul_overflow(need, static_cast<size_t>(d), &need))
            throw Error(where + ": shape " + shapeToString(std::vector<long>(h.shape.begin(), h.shape.end())) +
                        " is too large");
    const size_t have = bytes.size() - h.dataStart;
    if (have != need)
        throw Error(where + ": " + (have < need ? "truncated data" : "data size mismatch") + ": shape " +
                    shapeToString(std::vector<long>(h.shape.begin(), h.shape.end())) + " of '" + h.descr +
                    "' needs " + std::to_string(need) + " bytes, found " + std::to_string(have));
    at::Tensor t = at::empty(h.shape, at::TensorOptions().dtype(type));
    if (need) std::memcpy(t.data_ptr(), bytes.data() + h.dataStart, need);
    return t.to(at::kFloat);
}

at::Tensor loadNpy(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) failIn(path, "cannot open the file");
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return parseNpy(bytes, path);
}

std::shared_ptr<NpzFile> NpzFile::open(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) failIn(path, "cannot open (missing file?)");
    int code = 0;
    zip_t* z = zip_open(path.c_str(), ZIP_RDONLY, &code);
    if (!z) {
        zip_error_t e;
        zip_error_init_with_code(&e, code);
        const std::string why = zip_error_strerror(&e);
        zip_error_fini(&e);
        failIn(path, "not a readable .npz (zip) archive: " + why);
    }
    std::shared_ptr<NpzFile> f(new NpzFile());
    f->path_ = path;
    f->zip_ = z;
    const zip_int64_t n = zip_get_num_entries(z, 0);
    for (zip_int64_t i = 0; i < n; ++i) {
        const char* name = zip_get_name(z, static_cast<zip_uint64_t>(i), 0);
        if (!name) continue;
        std::string s = name;
        if (s.size() > 4 && s.compare(s.size() - 4, 4, ".npy") == 0) s.resize(s.size() - 4);
        f->names_.push_back(s);
    }
    return f;
}

NpzFile::~NpzFile() {
    if (zip_) zip_discard(asZip(zip_));  // opened read-only: nothing to write back
}

bool NpzFile::has(const std::string& name) const {
    for (const auto& n : names_)
        if (n == name) return true;
    return false;
}

at::Tensor NpzFile::load(const std::string& name) const {
    const std::string where = path_ + ": array '" + name + "'";
    const std::string entry = name + ".npy";
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat(asZip(zip_), entry.c_str(), 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE)) {
        std::string have;
        for (const auto& n : names_) have += (have.empty() ? "" : ", ") + n;
        failIn(path_, "missing array '" + name + "' (the archive holds: " + have + ")");
    }
    zip_file_t* zf = zip_fopen(asZip(zip_), entry.c_str(), 0);
    if (!zf) failIn(path_, "cannot open array '" + name + "': " + zip_strerror(asZip(zip_)));
    // Read in chunks rather than allocating the size the archive claims up front: a corrupt
    // directory entry can claim gigabytes that are not there.
    std::string bytes;
    zip_int64_t got = 0;
    constexpr zip_uint64_t kChunk = 16u << 20;
    while (static_cast<zip_uint64_t>(got) < st.size) {
        const zip_uint64_t want = std::min<zip_uint64_t>(kChunk, st.size - static_cast<zip_uint64_t>(got));
        bytes.resize(static_cast<size_t>(got) + static_cast<size_t>(want));
        const zip_int64_t n = zip_fread(zf, &bytes[static_cast<size_t>(got)], want);
        if (n < 0) {
            got = -1;
            break;
        }
        got += n;
        if (static_cast<zip_uint64_t>(n) < want) break;  // the data ended before the claimed size
    }
    const std::string readError = got < 0 ? zip_file_strerror(zf) : "";
    zip_fclose(zf);
    if (got < 0 || static_cast<zip_uint64_t>(got) != st.size)
        throw Error(where + ": cannot read its bytes (corrupt or truncated archive)" +
                    (readError.empty() ? "" : ": " + readError));

    return parseNpy(bytes, where);
}

}  // namespace cs

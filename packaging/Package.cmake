# The Debian package (`packaging/dev.sh package`, docs/packaging.md): what the install holds
# besides the binary and the SentencePiece plug-in (app/ and core/ install those two), and how
# CPack makes a .deb of it. The paths are the ones the program looks in, relative to its own
# location (bin/..): share/circuitscope/demo (core/runtime/DemoBundle.cpp) and lib/circuitscope
# (core/tokenize/SentencePieceTokenizer.cpp).

# The demo, without build-demo.sh's scratch (hidden SAE folders still training, model.new).
install(DIRECTORY "${PROJECT_SOURCE_DIR}/resources/demo/" DESTINATION share/circuitscope/demo
        PATTERN ".*" EXCLUDE
        PATTERN "model.new" EXCLUDE)

# Desktop integration: the menu entry, its icon (scalable, so one file serves every size) and the
# AppStream metadata software centres read.
install(FILES "${PROJECT_SOURCE_DIR}/packaging/circuitscope.desktop" DESTINATION share/applications)
install(FILES "${PROJECT_SOURCE_DIR}/packaging/circuitscope.svg"
        DESTINATION share/icons/hicolor/scalable/apps)
install(FILES "${PROJECT_SOURCE_DIR}/packaging/io.github.circuitscope.Circuitscope.metainfo.xml"
        DESTINATION share/metainfo)

# Files Debian policy wants compressed (the man page, the changelog): compressed when CMake
# configures (they are tiny), and again whenever they change, so installing never needs a build
# step of its own.
file(MAKE_DIRECTORY "${CMAKE_BINARY_DIR}/packaging")
function(cs_install_gzipped source name destination)
  set(gz "${CMAKE_BINARY_DIR}/packaging/${name}.gz")
  execute_process(COMMAND gzip -9 -n -c "${source}" OUTPUT_FILE "${gz}" RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "packaging: gzip failed on ${source}")
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${source}")
  install(FILES "${gz}" DESTINATION "${destination}")
endfunction()
cs_install_gzipped("${PROJECT_SOURCE_DIR}/packaging/circuitscope.1" circuitscope.1 share/man/man1)

# What Debian policy asks of every package: the copyright file, and the changelog compressed.
install(FILES "${PROJECT_SOURCE_DIR}/packaging/copyright" DESTINATION share/doc/circuitscope)
cs_install_gzipped("${PROJECT_SOURCE_DIR}/packaging/changelog" changelog share/doc/circuitscope)

# `cpack` packages what is already built: dev.sh builds first, and the suite's test_deb must not
# start a build of every target from inside ctest. (Without this, CMake makes `install`, which
# CPack runs, depend on `all`.)
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY TRUE)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME circuitscope)
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "see inside a language model: attention, features, circuits")
if(NOT CPACK_PACKAGE_CONTACT)
  set(CPACK_PACKAGE_CONTACT "Circuitscope developers <circuitscope@localhost>")
endif()
# The long description (CPack puts the summary above it and indents it as Debian wants).
set(CPACK_PACKAGE_DESCRIPTION
"Circuitscope is a desktop application and command-line tool for mechanistic
interpretability of language models (GPT-2, Llama, Qwen 2, Gemma 2). For a
prompt it shows the tokens, every attention head, the logit lens and the
sparse autoencoder (SAE) features at every token; it steers features,
computes attribution graphs, runs activation patching and model diffs, trains
SAEs and transcoders, and exports every view as SVG, PDF or PNG.

A small demo model with its SAEs and transcoders is included
(/usr/share/circuitscope/demo).")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends: from the libraries the binary and the plug-in link (dpkg-shlibdeps, which maps each to
# its package and minimum version: libtorch1.13, libqt6widgets6, libsentencepiece0 ...). Qt's
# platform plug-ins (xcb, offscreen) come with libqt6gui6, its SVG image plug-in with libqt6svg6.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# LibTorch calls libblas.so.3; Debian's reference BLAS behind that name is about 35x slower than
# OpenBLAS (docs/architecture.md), so ask for OpenBLAS without forcing one BLAS on everyone.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libopenblas0-pthread | libopenblas0")
set(CPACK_STRIP_FILES ON)
# Compression stays gzip, CPack's default: xz saved 0.9 of 13.8 MB (the demo's weights hardly
# compress) and made packing take 20 s instead of 7, inside the test suite's time.
include(CPack)

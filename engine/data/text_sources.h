// Where fine-tuning text comes from: a plain text file, a folder of them, or JSON lines. The result
// is a list of documents (strings); the tokenizer and the shard writer take it from there.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace hone::data {

// Reads the documents under `path`:
//   - a folder: every *.txt directly in it, sorted by file name, each one document (an error when
//     there is none);
//   - a .jsonl / .jsonlines / .ndjson file: one JSON object per line, the document being the string
//     in `text_field`; blank lines are skipped; a line that is not JSON, not an object, lacks the
//     field or holds a non-string there is an error naming the file and the 1-based line number;
//   - any other file (normally .txt): the whole file is one document.
// A leading UTF-8 byte order mark is dropped. Text must be valid UTF-8; otherwise the error names
// the file and the byte offset of the first bad byte. Errors are std::runtime_error.
std::vector<std::string> read_documents(const std::string& path,
                                        const std::string& text_field = "text");

// Offset of the first byte where `text` stops being well-formed UTF-8 (the lead byte of a bad or
// truncated sequence, or a stray continuation byte; overlong forms, surrogates and code points
// above U+10FFFF count as bad), or std::string_view::npos when all of it is well-formed.
size_t find_invalid_utf8(std::string_view text);

}  // namespace hone::data

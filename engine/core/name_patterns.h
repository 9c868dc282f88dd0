// Matching parameter, module and recipe-key names against user patterns: a glob ("*.attn.c_attn", "h.1?.*")
// when the pattern has no regex syntax besides * ? and ., otherwise an ECMAScript regex that must
// match the whole name. A pattern that matches nothing is an error that lists the closest names.
#pragma once
#include <string>
#include <vector>

namespace hone {

bool name_matches(const std::string& pattern, const std::string& name);
// Throws std::invalid_argument("<what>: pattern '<p>' matches no name; closest: a, b, c") unless
// some name matches.
void require_match(const std::string& what, const std::string& pattern, const std::vector<std::string>& names);
std::vector<std::string> closest_names(const std::string& pattern, const std::vector<std::string>& names, size_t n = 3);
// Levenshtein distance (for "did you mean" suggestions).
size_t edit_distance(const std::string& a, const std::string& b);

}  // namespace hone

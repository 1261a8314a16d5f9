// Generated from pricing/models.json by scripts/embed-model-prices.sh; a
// test checks that the two stay equal.
extension ModelDefinition {
    /// The repository's pricing/models.json.
    public static let builtInJSON = #"""
{
  "about": "tracefold's built-in model prices: USD per unit (token) by usage type. Each entry names the vendor page its prices come from and the date those prices took effect (asOf). Prices change: check the source page and edit this file, then run scripts/embed-model-prices.sh. A definition in collector.yaml (processors.fold.models) or made through POST /api/public/models for the same model wins over these.",
  "models": [
    {
      "id": "tf-gpt-4o",
      "modelName": "gpt-4o",
      "matchPattern": "(?i)^(openai/)?(gpt-4o)(-2024-08-06|-2024-11-20)?$",
      "unit": "TOKENS",
      "prices": {
        "input": 2.5e-06,
        "output": 1e-05,
        "input_cached_tokens": 1.25e-06,
        "output_reasoning_tokens": 1e-05
      },
      "source": "https://openai.com/api/pricing/",
      "asOf": "2024-10-01",
      "tokenizerId": "openai"
    },
    {
      "id": "tf-gpt-4o-mini",
      "modelName": "gpt-4o-mini",
      "matchPattern": "(?i)^(openai/)?(gpt-4o-mini)(-2024-07-18)?$",
      "unit": "TOKENS",
      "prices": {
        "input": 1.5e-07,
        "output": 6e-07,
        "input_cached_tokens": 7.5e-08,
        "output_reasoning_tokens": 6e-07
      },
      "source": "https://openai.com/api/pricing/",
      "asOf": "2024-07-18",
      "tokenizerId": "openai"
    },
    {
      "id": "tf-gpt-4.1",
      "modelName": "gpt-4.1",
      "matchPattern": "(?i)^(openai/)?(gpt-4\\.1)(-2025-04-14)?$",
      "unit": "TOKENS",
      "prices": {
        "input": 2e-06,
        "output": 8e-06,
        "input_cached_tokens": 5e-07,
        "output_reasoning_tokens": 8e-06
      },
      "source": "https://openai.com/api/pricing/",
      "asOf": "2025-04-14",
      "tokenizerId": "openai"
    },
    {
      "id": "tf-gpt-4.1-mini",
      "modelName": "gpt-4.1-mini",
      "matchPattern": "(?i)^(openai/)?(gpt-4\\.1-mini)(-2025-04-14)?$",
      "unit": "TOKENS",
      "prices": {
        "input": 4e-07,
        "output": 1.6e-06,
        "input_cached_tokens": 1e-07,
        "output_reasoning_tokens": 1.6e-06
      },
      "source": "https://openai.com/api/pricing/",
      "asOf": "2025-04-14",
      "tokenizerId": "openai"
    },
    {
      "id": "tf-gpt-4.1-nano",
      "modelName": "gpt-4.1-nano",
      "matchPattern": "(?i)^(openai/)?(gpt-4\\.1-nano)(-2025-04-14)?$",
      "unit": "TOKENS",
      "prices": {
        "input": 1e-07,
        "output": 4e-07,
        "input_cached_tokens": 2.5e-08,
        "output_reasoning_tokens": 4e-07
      },
      "source": "https://openai.com/api/pricing/",
      "asOf": "2025-04-14",
      "tokenizerId": "openai"
    },
    {
      "id": "tf-o3",
      "modelName": "o3",
      "matchPattern": "(?i)^(openai/)?(o3)(-2025-04-16)?$",
      "unit": "TOKENS",
      "prices": {
        "input": 2e-06,
        "output": 8e-06,
        "input_cached_tokens": 5e-07,
        "output_reasoning_tokens": 8e-06
      },
      "source": "https://openai.com/api/pricing/",
      "asOf": "2025-06-10",
      "tokenizerId": "openai",
      "note": "the price after OpenAI's June 2025 reduction"
    },
    {
      "id": "tf-o3-mini",
      "modelName": "o3-mini",
      "matchPattern": "(?i)^(openai/)?(o3-mini)(-2025-01-31)?$",
      "unit": "TOKENS",
      "prices": {
        "input": 1.1e-06,
        "output": 4.4e-06,
        "input_cached_tokens": 5.5e-07,
        "output_reasoning_tokens": 4.4e-06
      },
      "source": "https://openai.com/api/pricing/",
      "asOf": "2025-01-31",
      "tokenizerId": "openai"
    },
    {
      "id": "tf-o4-mini",
      "modelName": "o4-mini",
      "matchPattern": "(?i)^(openai/)?(o4-mini)(-2025-04-16)?$",
      "unit": "TOKENS",
      "prices": {
        "input": 1.1e-06,
        "output": 4.4e-06,
        "input_cached_tokens": 2.75e-07,
        "output_reasoning_tokens": 4.4e-06
      },
      "source": "https://openai.com/api/pricing/",
      "asOf": "2025-04-16",
      "tokenizerId": "openai"
    },
    {
      "id": "tf-gpt-3.5-turbo",
      "modelName": "gpt-3.5-turbo",
      "matchPattern": "(?i)^(openai/)?(gpt-)(35|3\\.5)(-turbo)(-0125)?$",
      "unit": "TOKENS",
      "prices": {
        "input": 5e-07,
        "output": 1.5e-06
      },
      "source": "https://openai.com/api/pricing/",
      "asOf": "2024-01-25",
      "tokenizerId": "openai"
    },
    {
      "id": "tf-text-embedding-3-small",
      "modelName": "text-embedding-3-small",
      "matchPattern": "(?i)^(openai/)?(text-embedding-3-small)$",
      "unit": "TOKENS",
      "prices": {
        "input": 2e-08
      },
      "source": "https://openai.com/api/pricing/",
      "asOf": "2024-01-25"
    },
    {
      "id": "tf-text-embedding-3-large",
      "modelName": "text-embedding-3-large",
      "matchPattern": "(?i)^(openai/)?(text-embedding-3-large)$",
      "unit": "TOKENS",
      "prices": {
        "input": 1.3e-07
      },
      "source": "https://openai.com/api/pricing/",
      "asOf": "2024-01-25"
    },
    {
      "id": "tf-claude-3-haiku",
      "modelName": "claude-3-haiku",
      "matchPattern": "(?i)^(anthropic/)?(claude-3-haiku)(-20240307)?$",
      "unit": "TOKENS",
      "prices": {
        "input": 2.5e-07,
        "output": 1.25e-06,
        "input_cached_tokens": 3e-08,
        "input_cache_creation": 3e-07
      },
      "source": "https://docs.anthropic.com/en/docs/about-claude/pricing",
      "asOf": "2024-03-13",
      "tokenizerId": "claude"
    },
    {
      "id": "tf-claude-3-5-haiku",
      "modelName": "claude-3-5-haiku",
      "matchPattern": "(?i)^(anthropic/)?(claude-3-5-haiku)(-latest|-20241022)?$",
      "unit": "TOKENS",
      "prices": {
        "input": 8e-07,
        "output": 4e-06,
        "input_cached_tokens": 8e-08,
        "input_cache_creation": 1e-06
      },
      "source": "https://docs.anthropic.com/en/docs/about-claude/pricing",
      "asOf": "2024-11-04",
      "tokenizerId": "claude"
    },
    {
      "id": "tf-claude-haiku-4-5",
      "modelName": "claude-haiku-4-5",
      "matchPattern": "(?i)^(anthropic/)?(claude-haiku-4-5)(-20251001)?$",
      "unit": "TOKENS",
      "prices": {
        "input": 1e-06,
        "output": 5e-06,
        "input_cached_tokens": 1e-07,
        "input_cache_creation": 1.25e-06
      },
      "source": "https://docs.anthropic.com/en/docs/about-claude/pricing",
      "asOf": "2025-10-15",
      "tokenizerId": "claude"
    },
    {
      "id": "tf-claude-3-5-sonnet",
      "modelName": "claude-3-5-sonnet",
      "matchPattern": "(?i)^(anthropic/)?(claude-3-5-sonnet)(-latest|-20240620|-20241022)?$",
      "unit": "TOKENS",
      "prices": {
        "input": 3e-06,
        "output": 1.5e-05,
        "input_cached_tokens": 3e-07,
        "input_cache_creation": 3.75e-06
      },
      "source": "https://docs.anthropic.com/en/docs/about-claude/pricing",
      "asOf": "2024-06-20",
      "tokenizerId": "claude"
    },
    {
      "id": "tf-claude-3-7-sonnet",
      "modelName": "claude-3-7-sonnet",
      "matchPattern": "(?i)^(anthropic/)?(claude-3-7-sonnet)(-latest|-20250219)?$",
      "unit": "TOKENS",
      "prices": {
        "input": 3e-06,
        "output": 1.5e-05,
        "input_cached_tokens": 3e-07,
        "input_cache_creation": 3.75e-06
      },
      "source": "https://docs.anthropic.com/en/docs/about-claude/pricing",
      "asOf": "2025-02-24",
      "tokenizerId": "claude"
    },
    {
      "id": "tf-claude-sonnet-4",
      "modelName": "claude-sonnet-4",
      "matchPattern": "(?i)^(anthropic/)?(claude-sonnet-4(-5)?)(-20250514|-20250929)?$",
      "unit": "TOKENS",
      "prices": {
        "input": 3e-06,
        "output": 1.5e-05,
        "input_cached_tokens": 3e-07,
        "input_cache_creation": 3.75e-06
      },
      "source": "https://docs.anthropic.com/en/docs/about-claude/pricing",
      "asOf": "2025-09-29",
      "tokenizerId": "claude",
      "note": "prompts up to 200k tokens; Sonnet 4 and 4.5 share the price"
    },
    {
      "id": "tf-claude-opus-4",
      "modelName": "claude-opus-4",
      "matchPattern": "(?i)^(anthropic/)?(claude-opus-4(-1)?)(-20250514|-20250805)?$",
      "unit": "TOKENS",
      "prices": {
        "input": 1.5e-05,
        "output": 7.5e-05,
        "input_cached_tokens": 1.5e-06,
        "input_cache_creation": 1.875e-05
      },
      "source": "https://docs.anthropic.com/en/docs/about-claude/pricing",
      "asOf": "2025-08-05",
      "tokenizerId": "claude",
      "note": "Opus 4 and 4.1 share the price"
    },
    {
      "id": "tf-gemini-1.5-flash",
      "modelName": "gemini-1.5-flash",
      "matchPattern": "(?i)^(google/)?(gemini-1\\.5-flash)(-latest|-00[12])?$",
      "unit": "TOKENS",
      "prices": {
        "input": 7.5e-08,
        "output": 3e-07
      },
      "source": "https://ai.google.dev/gemini-api/docs/pricing",
      "asOf": "2024-10-01",
      "note": "prompts up to 128k tokens"
    },
    {
      "id": "tf-gemini-1.5-pro",
      "modelName": "gemini-1.5-pro",
      "matchPattern": "(?i)^(google/)?(gemini-1\\.5-pro)(-latest|-00[12])?$",
      "unit": "TOKENS",
      "prices": {
        "input": 1.25e-06,
        "output": 5e-06
      },
      "source": "https://ai.google.dev/gemini-api/docs/pricing",
      "asOf": "2024-10-01",
      "note": "prompts up to 128k tokens"
    },
    {
      "id": "tf-gemini-2.0-flash",
      "modelName": "gemini-2.0-flash",
      "matchPattern": "(?i)^(google/)?(gemini-2\\.0-flash)(-001)?$",
      "unit": "TOKENS",
      "prices": {
        "input": 1e-07,
        "output": 4e-07
      },
      "source": "https://ai.google.dev/gemini-api/docs/pricing",
      "asOf": "2025-02-05"
    },
    {
      "id": "tf-gemini-2.0-flash-lite",
      "modelName": "gemini-2.0-flash-lite",
      "matchPattern": "(?i)^(google/)?(gemini-2\\.0-flash-lite)(-001)?$",
      "unit": "TOKENS",
      "prices": {
        "input": 7.5e-08,
        "output": 3e-07
      },
      "source": "https://ai.google.dev/gemini-api/docs/pricing",
      "asOf": "2025-02-25"
    },
    {
      "id": "tf-gemini-2.5-flash",
      "modelName": "gemini-2.5-flash",
      "matchPattern": "(?i)^(google/)?(gemini-2\\.5-flash)$",
      "unit": "TOKENS",
      "prices": {
        "input": 3e-07,
        "output": 2.5e-06,
        "output_reasoning_tokens": 2.5e-06
      },
      "source": "https://ai.google.dev/gemini-api/docs/pricing",
      "asOf": "2025-06-17",
      "note": "text input; thinking tokens are billed as output"
    },
    {
      "id": "tf-gemini-2.5-pro",
      "modelName": "gemini-2.5-pro",
      "matchPattern": "(?i)^(google/)?(gemini-2\\.5-pro)$",
      "unit": "TOKENS",
      "prices": {
        "input": 1.25e-06,
        "output": 1e-05,
        "output_reasoning_tokens": 1e-05
      },
      "source": "https://ai.google.dev/gemini-api/docs/pricing",
      "asOf": "2025-06-17",
      "note": "prompts up to 200k tokens; thinking tokens are billed as output"
    },
    {
      "id": "tf-mistral-large",
      "modelName": "mistral-large",
      "matchPattern": "(?i)^(mistral/)?(mistral-large)(-latest|-2411)?$",
      "unit": "TOKENS",
      "prices": {
        "input": 2e-06,
        "output": 6e-06
      },
      "source": "https://mistral.ai/pricing#api-pricing",
      "asOf": "2024-11-18"
    },
    {
      "id": "tf-mistral-small",
      "modelName": "mistral-small",
      "matchPattern": "(?i)^(mistral/)?(mistral-small)(-latest|-2503)?$",
      "unit": "TOKENS",
      "prices": {
        "input": 1e-07,
        "output": 3e-07
      },
      "source": "https://mistral.ai/pricing#api-pricing",
      "asOf": "2025-03-17"
    },
    {
      "id": "tf-codestral",
      "modelName": "codestral",
      "matchPattern": "(?i)^(mistral/)?(codestral)(-latest|-2501)?$",
      "unit": "TOKENS",
      "prices": {
        "input": 3e-07,
        "output": 9e-07
      },
      "source": "https://mistral.ai/pricing#api-pricing",
      "asOf": "2025-01-13"
    },
    {
      "id": "tf-open-mistral-nemo",
      "modelName": "open-mistral-nemo",
      "matchPattern": "(?i)^(mistral/)?(open-mistral-nemo)(-2407)?$",
      "unit": "TOKENS",
      "prices": {
        "input": 1.5e-07,
        "output": 1.5e-07
      },
      "source": "https://mistral.ai/pricing#api-pricing",
      "asOf": "2024-07-18"
    }
  ]
}
"""#
}

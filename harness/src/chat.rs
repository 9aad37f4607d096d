//! Chat templates (`--chat`): the Jinja template a checkpoint ships (tokenizer_config.json's
//! `chat_template`, a chat_template.jinja beside it, or GGUF `tokenizer.chat_template`),
//! rendered as transformers' `apply_chat_template(messages, add_generation_prompt=True)` does.
//!
//! Messages as lm-eval builds them without `--fewshot_as_multiturn` (api/task.py
//! `fewshot_context`, api/utils.py `multiturn_to_singleturn`): a system message holding the
//! system prompt and the task description joined by "\n\n" (`maybe_delimit`), then one user
//! message with the few-shot examples and the question. When a template rejects the system
//! role (older Mistral templates raise), the system message is dropped and the render retried,
//! as lm-eval's `HFLM.apply_chat_template` does.

use anyhow::{Context as _, bail};
use minijinja::{Environment, Error, ErrorKind, context};

/// The Mistral 7B paper's guardrail system prompt (§5.1), `--system-prompt mistral-guardrail`.
pub const MISTRAL_GUARDRAIL: &str = "Always assist with care, respect, and truth. Respond with utmost utility yet \
securely. Avoid harmful, unethical, prejudiced, or negative content. Ensure replies promote fairness and positivity.";

/// A named system prompt, or the text itself.
pub fn resolve_system_prompt(value: &str) -> &str {
    match value {
        "mistral-guardrail" => MISTRAL_GUARDRAIL,
        other => other,
    }
}

pub struct ChatTemplate {
    env: Environment<'static>,
    bos: String,
    eos: String,
}

/// What one render produced, and whether the system message had to be dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub dropped_system: bool,
}

impl ChatTemplate {
    pub fn new(source: &str, bos: &str, eos: &str) -> anyhow::Result<Self> {
        let mut env = Environment::new();
        // As transformers compiles chat templates (`_compile_jinja_template`).
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .context("the chat template's syntax settings")?;
        env.set_syntax(syntax);
        minijinja_contrib::add_to_environment(&mut env);
        // Python string methods (.strip(), .startswith(), ...) that HF templates call.
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |message: String| -> Result<String, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, message))
        });
        env.add_template_owned("chat", source.to_string())
            .context("the chat template is not valid Jinja")?;
        Ok(Self {
            env,
            bos: bos.to_string(),
            eos: eos.to_string(),
        })
    }

    /// system (system prompt + description) and one user turn, ending with the assistant's
    /// generation prompt.
    pub fn render(&self, system: Option<&str>, user: &str) -> anyhow::Result<Rendered> {
        let with_system = system.filter(|s| !s.is_empty());
        match self.render_messages(with_system, user) {
            Ok(text) => Ok(Rendered {
                text,
                dropped_system: false,
            }),
            Err(first) if with_system.is_some() => match self.render_messages(None, user) {
                Ok(text) => Ok(Rendered {
                    text,
                    dropped_system: true,
                }),
                Err(_) => Err(first).context("rendering the chat template"),
            },
            Err(e) => Err(e).context("rendering the chat template"),
        }
    }

    fn render_messages(&self, system: Option<&str>, user: &str) -> Result<String, Error> {
        let mut messages = Vec::new();
        if let Some(system) = system {
            messages.push(context! { role => "system", content => system });
        }
        messages.push(context! { role => "user", content => user });
        self.env.get_template("chat")?.render(context! {
            messages => messages,
            add_generation_prompt => true,
            bos_token => &self.bos,
            eos_token => &self.eos,
        })
    }
}

/// `maybe_delimit(system_instruction, description, "\n\n")`: joined with the delimiter unless
/// either side already has whitespace at the join.
pub fn system_message(system_prompt: Option<&str>, description: &str) -> Option<String> {
    let joined = match (system_prompt.filter(|s| !s.is_empty()), description) {
        (None, d) => d.to_string(),
        (Some(p), "") => p.to_string(),
        (Some(p), d) => {
            let touching_space = p.ends_with(char::is_whitespace) || d.starts_with(char::is_whitespace);
            if touching_space {
                format!("{p}{d}")
            } else {
                format!("{p}\n\n{d}")
            }
        }
    };
    (!joined.is_empty()).then_some(joined)
}

/// `--chat` with its `--system-prompt`: how every prompt of a run is wrapped.
pub struct ChatPrompt {
    template: ChatTemplate,
    system_prompt: Option<String>,
}

impl ChatPrompt {
    pub fn new(template: ChatTemplate, system_prompt: Option<&str>) -> Self {
        Self {
            template,
            system_prompt: system_prompt.map(|p| resolve_system_prompt(p).to_string()),
        }
    }

    /// lm-eval's `fewshot_context` with `apply_chat_template` (not multiturn): a system turn
    /// holding the system prompt and the task description, one user turn holding the rest of the
    /// plain-text `context` (the few-shot examples and the question), then the assistant's
    /// generation prompt. `context` starts with `description`, as a plain-text prompt does.
    pub fn wrap(&self, description: &str, context: &str) -> anyhow::Result<String> {
        let user = context.strip_prefix(description).unwrap_or(context);
        let system = system_message(self.system_prompt.as_deref(), description);
        Ok(self.template.render(system.as_deref(), user)?.text)
    }
}

/// The template of a loaded tokenizer, with its BOS/EOS texts.
pub fn from_tokenizer(tokenizer: &model::load::tokenizer::TextTokenizer) -> anyhow::Result<ChatTemplate> {
    let Some(source) = tokenizer.chat_template() else {
        bail!("--chat: this model's tokenizer has no chat template (tokenizer_config.json / GGUF metadata)");
    };
    let text = |id: Option<u32>| -> anyhow::Result<String> {
        Ok(match id {
            Some(id) => tokenizer.decode(&[id], false)?,
            None => String::new(),
        })
    };
    ChatTemplate::new(source, &text(tokenizer.bos_id())?, &text(tokenizer.eos_id())?)
        .with_context(|| format!("{}: its chat template", tokenizer.source().display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // SmolLM2-135M-Instruct's template (../shared/fixtures/smollm2/chat_template.jinja).
    const CHATML: &str = r#"{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system
You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>
' }}{% endif %}{{'<|im_start|>' + message['role'] + '
' + message['content'] + '<|im_end|>' + '
'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant
' }}{% endif %}"#;

    // Mistral-7B-Instruct-v0.1's template (tokenizer_config.json), which rejects a system role.
    const MISTRAL_V01: &str = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != \
(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') \
}}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif \
message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}{% else %}{{ raise_exception('Only user \
and assistant roles are supported!') }}{% endif %}{% endfor %}";

    #[test]
    fn chatml_matches_the_fixture_prompt() {
        // greedy.json's first prompt, rendered by transformers from this template.
        let t = ChatTemplate::new(CHATML, "<|im_start|>", "<|im_end|>").unwrap();
        let r = t.render(None, "What is the capital of France?").unwrap();
        assert_eq!(
            r.text,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
        );
        let r = t.render(Some(MISTRAL_GUARDRAIL), "Hi").unwrap();
        assert!(r.text.starts_with(&format!(
            "<|im_start|>system\n{MISTRAL_GUARDRAIL}<|im_end|>\n<|im_start|>user\nHi"
        )));
    }

    #[test]
    fn mistral_inst_format_and_system_fallback() {
        let t = ChatTemplate::new(MISTRAL_V01, "<s>", "</s>").unwrap();
        let r = t.render(None, "2+2?").unwrap();
        assert_eq!(r.text, "<s>[INST] 2+2? [/INST]");
        let r = t.render(Some("Be brief."), "2+2?").unwrap();
        assert!(r.dropped_system);
        assert_eq!(r.text, "<s>[INST] 2+2? [/INST]");
    }

    /// `strftime_now` (today's date under transformers) is not defined here (README, `--chat`):
    /// a template calling it unguarded fails naming it; Llama 3.2's guarded call takes the
    /// template's fixed date (`llama3_style_constructs_render_as_jinja2_does`).
    #[test]
    fn an_unguarded_strftime_now_is_an_error_naming_it() {
        let unguarded = ChatTemplate::new(r#"{{ strftime_now("%d %b %Y") }}"#, "", "").unwrap();
        let err = format!("{:#}", unguarded.render(None, "Hi").unwrap_err());
        assert!(err.contains("strftime_now"), "{err}");
    }

    /// The Jinja constructs Llama 3.x templates use on the way to a system and a user turn
    /// (`messages[1:]`, `|trim`, `is not none`, `is defined`, `in`, `{{-` trimming, Llama 3.2's
    /// date fallback when `strftime_now` is undefined), in a template written for this test; the
    /// expected texts are Python jinja2's (trim_blocks, lstrip_blocks).
    #[test]
    fn llama3_style_constructs_render_as_jinja2_does() {
        const LLAMA3_STYLE: &str = r#"{{- bos_token }}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{{- "Today Date: " + date_string + "\n\n" }}
{{- system_message }}
{{- "<|eot_id|>" }}
{%- for message in messages %}
    {%- if not (message.role == 'ipython' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif message.content is mapping or message.content is iterable %}
        {{- message.content | tojson(indent=4) }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}"#;
        let t = ChatTemplate::new(LLAMA3_STYLE, "<|begin_of_text|>", "<|eot_id|>").unwrap();
        let r = t.render(Some("  Be brief. "), " 2+2? \n").unwrap();
        assert!(!r.dropped_system);
        assert_eq!(
            r.text,
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nToday Date: 26 Jul 2024\n\nBe brief.<|eot_id|>\
<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        );
        assert_eq!(
            t.render(None, "Hi").unwrap().text,
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nToday Date: 26 Jul 2024\n\n<|eot_id|>\
<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        );
    }

    #[test]
    fn system_message_joins_like_maybe_delimit() {
        assert_eq!(system_message(None, ""), None);
        assert_eq!(system_message(Some("A."), "B"), Some("A.\n\nB".into()));
        assert_eq!(system_message(Some("A.\n"), "B"), Some("A.\nB".into()));
        assert_eq!(system_message(None, "Desc"), Some("Desc".into()));
        assert_eq!(resolve_system_prompt("mistral-guardrail"), MISTRAL_GUARDRAIL);
        assert_eq!(resolve_system_prompt("custom"), "custom");
    }
}
